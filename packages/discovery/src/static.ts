import type { Discovery, DiscoveryReportingOptions } from './discovery.js';
import { EndpointPublisher, reportToConsole } from './discovery.js';
import { type EndpointEntry, parseEndpointEntry } from './endpoint.js';

/**
 * A fixed set of endpoints. Throws at once on an entry that is not `host:port`.
 *
 * @example staticDiscovery(['127.0.0.1:50051', { address: '[::1]:50052', labels: { zone: 'b' } }])
 */
export function staticDiscovery(
  entries: readonly EndpointEntry[],
  { onError = reportToConsole }: DiscoveryReportingOptions = {},
): Discovery {
  const publisher = new EndpointPublisher(onError);
  publisher.publish(entries.map(parseEndpointEntry));
  return {
    subscribe: (listener) => publisher.subscribe(listener),
    refresh: () => {},
    close: async () => publisher.close(),
  };
}
