import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import { type Channel, createChannel, createClientFactory } from 'nice-grpc';
import type { ClientMiddleware } from 'nice-grpc-common';
import {
  type TestServiceClient,
  TestServiceDefinition,
} from './gen/nice/switchyard/testing/v1/test.js';

/** Options for {@link createTestClient}. */
export interface TestClientOptions {
  /** Client middleware, attached in order with `createClientFactory().use(...)`. */
  middleware?: readonly ClientMiddleware[];
  /** Defaults to insecure. */
  credentials?: ChannelCredentials;
  /** grpc-js channel options, such as `grpc.ssl_target_name_override`. */
  channelOptions?: ChannelOptions;
}

/** A nice-grpc TestService client and the channel it owns. */
export interface TestClient {
  client: TestServiceClient;
  channel: Channel;
  /** Closes the channel; calls still running fail. */
  close(): void;
}

/** A nice-grpc TestService client for `address` (`host:port`) on a channel of its own. */
export function createTestClient(address: string, options: TestClientOptions = {}): TestClient {
  const { middleware = [], credentials, channelOptions } = options;
  const channel = createChannel(address, credentials, channelOptions);
  let factory = createClientFactory();
  for (const m of middleware) factory = factory.use(m);
  return {
    client: factory.create(TestServiceDefinition, channel),
    channel,
    close: () => channel.close(),
  };
}
