import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig, V1EndpointSlice, Watch } from '@kubernetes/client-node';
import { type BackoffOptions, exponentialBackoff } from '@switchyard/core';
import {
  type Discovery,
  DiscoveryError,
  type DiscoveryReportingOptions,
  EndpointPublisher,
  reportToConsole,
} from './discovery.js';
import { type Endpoint, endpoint } from './endpoint.js';

/** Options of {@link kubernetesDiscovery}. */
export interface KubernetesDiscoveryOptions extends DiscoveryReportingOptions {
  /** The Service whose EndpointSlices are watched. */
  service: string;
  /**
   * A port name — the Service port's name, as EndpointSlices carry it — or a number, which is
   * used as the pod's port as is (the target port, not the Service's port).
   */
  port: string | number;
  /** Default: the kubeconfig context's namespace (in a pod: its own), else `default`. */
  namespace?: string;
  /**
   * A loaded `KubeConfig`, or the path of a kubeconfig file. Default: `loadFromDefault()` —
   * `$KUBECONFIG`, `~/.kube/config`, else the pod's service account (in-cluster).
   */
  kubeConfig?: KubeConfig | string;
  /**
   * The API server ends each watch after this long, and it is resumed from the last
   * resourceVersion seen: a stuck connection cannot hide changes for longer. Default 300 s.
   */
  watchTimeoutSeconds?: number;
  /** Delays after a failed list or watch. Default 250 ms doubling to 30 s, full jitter. */
  backoff?: BackoffOptions;
}

const apiPath = (namespace: string) =>
  `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/endpointslices`;

/**
 * Endpoints of a Kubernetes Service from its `discovery.k8s.io/v1` EndpointSlices, listed then
 * watched. Avoids the bugs of kuberesolver (#66, #54) and friends:
 * - every slice of the service is aggregated, and an endpoint listed by several is kept once;
 * - a DELETED slice drops its endpoints, an empty slice contributes none;
 * - routing follows kube-proxy: endpoints whose `ready` is true (or unset) receive calls; only
 *   when none is ready anywhere in the service, `serving` endpoints that are `terminating` do
 *   (a rollout's last pods keep serving until their replacements are ready);
 * - a watch that ends is resumed from the last resourceVersion; 410 Gone (the version was
 *   compacted away) re-lists; failures back off (core's `exponentialBackoff`).
 * Until the first list succeeds nothing is published; after it, an empty set is the truth (the
 * service has no endpoints), unlike DNS where an empty answer is distrusted.
 * `refresh` does nothing: the watch already streams every change.
 */
export function kubernetesDiscovery({
  service,
  port,
  namespace,
  kubeConfig,
  watchTimeoutSeconds = 300,
  backoff = { baseMs: 250, maxMs: 30_000 },
  onError = reportToConsole,
}: KubernetesDiscoveryOptions): Discovery {
  const publisher = new EndpointPublisher(onError);
  const stopped = new AbortController();
  const delay = exponentialBackoff(backoff);
  const slices = new Map<string, V1EndpointSlice>();

  const loop = async () => {
    // Loaded lazily: @kubernetes/client-node takes ~0.5 s to import, which users of the other
    // discoveries should not pay.
    const k8s = await import('@kubernetes/client-node');
    let config: KubeConfig | undefined;
    let ns = namespace ?? 'default';
    let where = `${ns}/${service}`;
    let resourceVersion: string | undefined;
    let failures = 0;
    let gonesInARow = 0;
    while (!stopped.signal.aborted) {
      try {
        if (!config) {
          const loading = typeof kubeConfig === 'object' ? kubeConfig : new k8s.KubeConfig();
          if (typeof kubeConfig === 'string') loading.loadFromFile(kubeConfig);
          else if (kubeConfig === undefined) loading.loadFromDefault();
          ns = namespace ?? loading.getContextObject(loading.getCurrentContext())?.namespace ?? ns;
          where = `${ns}/${service}`;
          config = loading;
        }
        const labelSelector = `kubernetes.io/service-name=${service}`;
        if (resourceVersion === undefined) {
          const list = await config
            .makeApiClient(k8s.DiscoveryV1Api)
            .listNamespacedEndpointSlice({ namespace: ns, labelSelector });
          slices.clear();
          for (const slice of list.items) slices.set(slice.metadata?.name ?? '', slice);
          resourceVersion = list.metadata?.resourceVersion ?? '';
          publisher.publish(endpointsOfSlices(slices.values(), port));
          failures = 0;
        }
        const started = performance.now();
        const { events } = await watchSlices(
          new k8s.Watch(config),
          apiPath(ns),
          {
            labelSelector,
            resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: watchTimeoutSeconds,
          },
          (type, slice) => {
            resourceVersion = slice.metadata?.resourceVersion ?? resourceVersion;
            if (type === 'BOOKMARK') return;
            if (type === 'DELETED') slices.delete(slice.metadata?.name ?? '');
            else slices.set(slice.metadata?.name ?? '', slice);
            publisher.publish(endpointsOfSlices(slices.values(), port));
            failures = 0;
            gonesInARow = 0;
          },
          stopped.signal,
        );
        // A watch that ends at once, empty-handed, again and again would spin: back off.
        if (events === 0 && performance.now() - started < 250 && !stopped.signal.aborted) {
          throw new Error('the watch ended at once without an event');
        }
        gonesInARow = 0;
      } catch (cause) {
        if (stopped.signal.aborted) break;
        if (statusCodeOf(cause) === 410) {
          // 410 Gone: our resourceVersion was compacted away; only a fresh list can say what the
          // watch missed. Routine, so the first one re-lists at once, unreported.
          resourceVersion = undefined;
          gonesInARow += 1;
          if (gonesInARow === 1) continue;
        }
        onError(
          new DiscoveryError(
            `kubernetes EndpointSlices of ${where}: ${describeApiError(cause)}; keeping the last good set`,
            { cause },
          ),
        );
        await sleep(delay(failures), undefined, { signal: stopped.signal }).catch(() => {});
        failures += 1;
      }
    }
  };
  const running = loop().catch((cause: unknown) => {
    onError(
      new DiscoveryError(`kubernetes discovery of ${service} stopped: ${String(cause)}`, { cause }),
    );
  });

  return {
    subscribe: (listener) => publisher.subscribe(listener),
    refresh: () => {},
    close: async () => {
      stopped.abort();
      publisher.close();
      await running;
    },
  };
}

type SliceEvent = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

/** An `ERROR` event of a watch stream, carrying the API's Status (410 = Expired). */
class WatchStatusError extends Error {
  constructor(
    readonly statusCode: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Runs one watch request until the server ends it, it fails, or `signal` aborts; resolves with
 * the number of events seen. client-node's `Watch` reports the end through a callback and hands
 * its AbortController over only once the response headers are in, hence the bookkeeping.
 */
function watchSlices(
  watch: Watch,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  onEvent: (type: SliceEvent, slice: V1EndpointSlice) => void,
  signal: AbortSignal,
): Promise<{ events: number }> {
  return new Promise((resolve, reject) => {
    let controller: AbortController | undefined;
    let settled = false;
    let events = 0;
    // The server ends every watch after timeoutSeconds; one still open well past that sits on a
    // connection that died without a FIN or RST (a node gone, a NAT entry dropped).
    const timeoutMs = Number(query.timeoutSeconds) * 1000;
    const watchdog = setTimeout(
      () => {
        settle(
          new Error(
            `the watch outlived its ${timeoutMs / 1000} s timeout: connection presumed dead`,
          ),
        );
      },
      timeoutMs * 1.25 + 1_000,
    );
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(watchdog);
      signal.removeEventListener('abort', stop);
      controller?.abort();
      if (error) reject(error);
      else resolve({ events });
    };
    const stop = () => settle();
    signal.addEventListener('abort', stop, { once: true });
    watch
      .watch(
        path,
        query,
        (type: string, object: unknown) => {
          if (settled) return;
          if (type === 'ERROR') {
            const status = object as { code?: number; message?: string } | undefined;
            settle(new WatchStatusError(status?.code, status?.message ?? 'watch error'));
            return;
          }
          if (
            type !== 'ADDED' &&
            type !== 'MODIFIED' &&
            type !== 'DELETED' &&
            type !== 'BOOKMARK'
          ) {
            return;
          }
          events += 1;
          onEvent(type, object as V1EndpointSlice);
        },
        (error: unknown) => settle(error ?? undefined),
      )
      .then((abort) => {
        controller = abort;
        if (settled) abort.abort();
      }, settle);
    if (signal.aborted) stop();
  });
}

/** The endpoints new calls may use, by kube-proxy's rule (see {@link kubernetesDiscovery}). */
function endpointsOfSlices(slices: Iterable<V1EndpointSlice>, port: string | number): Endpoint[] {
  const ready: Endpoint[] = [];
  const servingTerminating: Endpoint[] = [];
  // By name, so that which duplicate's labels win does not depend on arrival order.
  const byName = [...slices].sort((a, b) =>
    (a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1,
  );
  for (const slice of byName) {
    // FQDN slices are legacy and name hosts, which the proxy can dial as well as IPs.
    if (!['IPv4', 'IPv6', 'FQDN'].includes(slice.addressType)) continue;
    const portNumber =
      typeof port === 'number' ? port : slice.ports?.find((p) => (p.name ?? '') === port)?.port;
    if (portNumber === undefined) continue;
    for (const ep of slice.endpoints ?? []) {
      // The API: "addresses … are assumed to be fungible and clients may choose to only use the
      // first element".
      const address = ep.addresses?.[0];
      if (address === undefined) continue;
      const { ready: isReady, serving, terminating } = ep.conditions ?? {};
      const labels: Record<string, string> = {};
      if (ep.zone) labels.zone = ep.zone;
      if (ep.nodeName) labels.node = ep.nodeName;
      if (ep.targetRef?.kind === 'Pod' && ep.targetRef.name) labels.pod = ep.targetRef.name;
      // Unset conditions mean "unknown", which the API says to read as ready/serving.
      if (isReady !== false) ready.push(endpoint(address, portNumber, labels));
      else if (serving !== false && terminating === true) {
        servingTerminating.push(endpoint(address, portNumber, labels));
      }
    }
  }
  // An endpoint ready in one slice and not in another is ready (it is in `ready`); duplicates
  // within a list are removed when the set is published.
  return ready.length > 0 ? ready : servingTerminating;
}

function statusCodeOf(error: unknown): number | undefined {
  const { statusCode, code } = (error ?? {}) as { statusCode?: unknown; code?: unknown };
  if (typeof statusCode === 'number') return statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** One line: the API's Status message when there is one (client-node puts it in `body`). */
function describeApiError(error: unknown): string {
  const status = statusCodeOf(error);
  let body = (error as { body?: unknown } | undefined)?.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // Not a Status object: the text is the message.
    }
  }
  const text = error instanceof Error ? error.message : String(error);
  const message =
    (typeof body === 'object' && body !== null && 'message' in body && String(body.message)) ||
    (typeof body === 'string' && body) ||
    // client-node's ApiException: "HTTP-Code: 401\nMessage: Unauthorized\nBody: …".
    /^Message: (.*)$/m.exec(text)?.[1] ||
    (text.split('\n')[0] ?? '');
  return status === undefined ? message : `HTTP ${status}: ${message}`;
}
