import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Discovery,
  type DiscoveryError,
  type KubernetesDiscoveryOptions,
  kubernetesDiscovery,
} from '../src/index.js';
import { type FakeKubeApi, type Slice, startFakeKubeApi } from './support/fake-kube-api.js';
import { eventually, logUpdates } from './support/updates.js';

type Conditions = NonNullable<NonNullable<Slice['endpoints']>[number]['conditions']>;

/** An EndpointSlice of Service `service` in `default`, as the EndpointSlice controller writes. */
function slice(
  name: string,
  endpoints: (string | [string, Conditions])[] | null,
  {
    service = 'api',
    ports = [{ name: 'grpc', port: 8080 }] as Slice['ports'],
    namespace = 'default',
  } = {},
): Slice {
  return {
    metadata: { name, namespace, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports,
    endpoints:
      endpoints?.map((entry) => {
        const [ip, conditions] =
          typeof entry === 'string'
            ? [entry, { ready: true, serving: true, terminating: false }]
            : entry;
        return {
          addresses: [ip],
          conditions,
          nodeName: `node-${ip.split('.').at(-1)}`,
          zone: 'zone-a',
          targetRef: { kind: 'Pod', name: `api-${ip.split('.').at(-1)}`, namespace },
        };
      }) ?? null,
  };
}

const notReady: Conditions = { ready: false, serving: false, terminating: false };
const terminatingServing: Conditions = { ready: false, serving: true, terminating: true };
const terminatingDone: Conditions = { ready: false, serving: false, terminating: true };

let api: FakeKubeApi;
let dir: string;
let errors: DiscoveryError[];
const discoveries: Discovery[] = [];
beforeEach(async () => {
  api = await startFakeKubeApi();
  dir = await mkdtemp(join(tmpdir(), 'switchyard-kube-discovery-'));
  errors = [];
});
afterEach(async () => {
  for (const discovery of discoveries.splice(0)) await discovery.close();
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(options: Partial<KubernetesDiscoveryOptions> = {}, namespace = 'default') {
  const kubeconfig = join(dir, `kubeconfig-${namespace}`);
  await writeFile(kubeconfig, api.kubeconfig(namespace));
  const discovery = kubernetesDiscovery({
    service: 'api',
    port: 'grpc',
    kubeConfig: kubeconfig,
    backoff: { baseMs: 20, maxMs: 100 },
    onError: (e) => errors.push(e),
    ...options,
  });
  discoveries.push(discovery);
  return discovery;
}

const at8080 = (...lastOctets: number[]) => lastOctets.map((n) => `10.0.0.${n}:8080`);

describe('kubernetesDiscovery', () => {
  it('aggregates every slice of the service once each, and nothing of other services', async () => {
    api.apply(slice('api-abc', ['10.0.0.1', '10.0.0.2']));
    api.apply(slice('api-def', ['10.0.0.2', '10.0.0.3']));
    api.apply(slice('web-xyz', ['10.0.0.9'], { service: 'web' }));
    const log = logUpdates(await start());
    await log.waitFor(at8080(1, 2, 3));
    expect(log.updates[0]!.update.endpoints[0]).toEqual({
      address: '10.0.0.1:8080',
      host: '10.0.0.1',
      port: 8080,
      labels: { zone: 'zone-a', node: 'node-1', pod: 'api-1' },
    });
    expect(api.requests[0]!.query.get('labelSelector')).toBe('kubernetes.io/service-name=api');
    expect(errors).toEqual([]);
  });

  it('routes to ready endpoints; serving-but-terminating ones only when none is ready (kube-proxy rule)', async () => {
    api.apply(
      slice('api-a', [
        '10.0.0.1',
        ['10.0.0.2', notReady],
        ['10.0.0.3', terminatingServing],
        ['10.0.0.4', terminatingDone],
        ['10.0.0.5', {}], // conditions unknown: the API says to read them as ready
      ]),
    );
    // Not ready here, ready in another slice (the controller moving it): ready wins.
    api.apply(
      slice('api-b', [
        ['10.0.0.1', notReady],
        ['10.0.0.6', notReady],
      ]),
    );
    api.apply(slice('api-c', ['10.0.0.6']));
    const log = logUpdates(await start());
    await log.waitFor(at8080(1, 5, 6));

    // A rollout's end: every old pod terminating, the new ones not ready yet.
    api.apply(
      slice('api-a', [
        ['10.0.0.1', terminatingServing],
        ['10.0.0.3', terminatingServing],
        ['10.0.0.5', terminatingDone],
      ]),
    );
    api.apply(slice('api-b', [['10.0.0.7', notReady]]));
    api.apply(slice('api-c', [['10.0.0.6', terminatingDone]]));
    await log.waitFor(at8080(1, 3));

    // One new pod ready: the terminating ones get no new calls.
    api.apply(slice('api-b', ['10.0.0.7']));
    await log.waitFor(at8080(7));
    // Back to no ready endpoint: the terminating-but-serving ones again.
    let since = log.updates.length;
    api.apply(slice('api-b', [['10.0.0.7', terminatingDone]]));
    await log.waitFor(at8080(1, 3), 5_000, since);
    // Nothing serving at all is an empty set, not the last good one: the API is the truth.
    since = log.updates.length;
    api.apply(
      slice('api-a', [
        ['10.0.0.1', terminatingDone],
        ['10.0.0.3', notReady],
      ]),
    );
    await log.waitFor([], 5_000, since);
  });

  it('follows ADDED, MODIFIED and DELETED slices and empty ones, at watch speed', async () => {
    api.apply(slice('api-a', ['10.0.0.1']));
    const log = logUpdates(await start());
    await log.waitFor(at8080(1));

    let changedAt = performance.now();
    api.apply(slice('api-b', ['10.0.0.2']));
    const added = await log.waitFor(at8080(1, 2));
    expect(added.at - changedAt).toBeLessThan(500);

    api.apply(slice('api-a', ['10.0.0.1', '10.0.0.3']));
    await log.waitFor(at8080(1, 2, 3));

    changedAt = performance.now();
    api.delete('api-a');
    const deleted = await log.waitFor(at8080(2));
    expect(deleted.at - changedAt).toBeLessThan(500);

    // The controller empties a slice (endpoints: null) rather than deleting it.
    api.apply(slice('api-b', null));
    await log.waitFor([]);
    api.apply(slice('api-c', ['10.0.0.4']));
    await log.waitFor(at8080(4));
    // Other namespaces and services stay out.
    api.apply(slice('api-a', ['10.0.0.8'], { namespace: 'other' }));
    api.apply(slice('web-a', ['10.0.0.9'], { service: 'web' }));
    api.apply(slice('api-d', ['10.0.0.5']));
    await log.waitFor(at8080(4, 5));
    expect(log.updates.flatMap((u) => u.addresses)).not.toContain('10.0.0.8:8080');
  });

  it('publishes only changes: a slice rewritten with the same endpoints gives no update', async () => {
    api.apply(slice('api-a', ['10.0.0.1', '10.0.0.2']));
    const log = logUpdates(await start());
    await log.waitFor(at8080(1, 2));
    api.apply(slice('api-a', ['10.0.0.2', '10.0.0.1']));
    api.apply(slice('api-b', ['10.0.0.1']));
    api.apply(slice('api-c', ['10.0.0.3']));
    await log.waitFor(at8080(1, 2, 3));
    expect(log.updates).toHaveLength(2);
  });

  it('takes the port by name from each slice, or a pod port number as is', async () => {
    api.apply(
      slice('api-a', ['10.0.0.1'], {
        ports: [
          { name: 'grpc', port: 8080 },
          { name: 'metrics', port: 9090 },
        ],
      }),
    );
    // During a rollout that changes targetPort, slices disagree on the number.
    api.apply(slice('api-b', ['10.0.0.2'], { ports: [{ name: 'grpc', port: 8081 }] }));
    api.apply(slice('api-c', ['10.0.0.3'], { ports: [{ name: 'metrics', port: 9090 }] }));
    const byName = logUpdates(await start());
    await byName.waitFor(['10.0.0.1:8080', '10.0.0.2:8081']);
    const byNumber = logUpdates(await start({ port: 7000 }));
    await byNumber.waitFor(['10.0.0.1:7000', '10.0.0.2:7000', '10.0.0.3:7000']);
  });

  it('resumes a dropped watch from the last resourceVersion, without re-listing', async () => {
    api.apply(slice('api-a', ['10.0.0.1']));
    const log = logUpdates(await start());
    await log.waitFor(at8080(1));
    api.apply(slice('api-b', ['10.0.0.2']));
    await log.waitFor(at8080(1, 2));
    const lastSeen = api.requests.length;
    const seenVersion = '1002';

    api.dropWatches();
    api.apply(slice('api-c', ['10.0.0.3'])); // happens while no watch is open
    await log.waitFor(at8080(1, 2, 3));
    const after = api.requests.slice(lastSeen);
    expect(after.every((r) => r.watch)).toBe(true);
    expect(after[0]!.query.get('resourceVersion')).toBe(seenVersion);
    expect(after[0]!.query.get('allowWatchBookmarks')).toBe('true');
  });

  it('moves its resourceVersion on with BOOKMARKs, and resumes after the server ends a watch', async () => {
    api.apply(slice('api-a', ['10.0.0.1']));
    const log = logUpdates(await start({ watchTimeoutSeconds: 1 }));
    await log.waitFor(at8080(1));
    await eventually(() => api.openWatches() === 1, 2_000, 'the watch');
    // Changes elsewhere move the resourceVersion without sending this watch anything…
    api.apply(slice('web-a', ['10.0.0.9'], { service: 'web' }));
    api.apply(slice('web-b', ['10.0.0.8'], { service: 'web' }));
    api.bookmark();
    // …and the bookmark carries it, so the next watch starts after them.
    const watches = api.requests.filter((r) => r.watch).length;
    await eventually(
      () => api.requests.filter((r) => r.watch).length > watches,
      3_000,
      'a resumed watch',
    );
    expect(api.requests.at(-1)!.query.get('resourceVersion')).toBe('1003');
    expect(api.requests.filter((r) => !r.watch)).toHaveLength(1);
    // A watch the server ends on time is routine, not an error.
    expect(errors).toEqual([]);
  });

  it('gives up on a watch that outlives its timeout (a silently dead connection) and resumes', async () => {
    api.apply(slice('api-a', ['10.0.0.1']));
    api.ignoreWatchTimeouts();
    const log = logUpdates(await start({ watchTimeoutSeconds: 1 }));
    await log.waitFor(at8080(1));
    await eventually(() => errors.length > 0, 5_000, 'the watchdog');
    expect(errors[0]!.message).toBe(
      'kubernetes EndpointSlices of default/api: the watch outlived its 1 s timeout: connection presumed dead; keeping the last good set',
    );
    await eventually(
      () => api.requests.filter((r) => r.watch).length >= 2,
      2_000,
      'a resumed watch',
    );
    expect(api.requests.at(-1)!.query.get('resourceVersion')).toBe('1001');
  });

  it('re-lists on 410 Gone, dropping what was deleted while it could not watch', async () => {
    api.apply(slice('api-a', ['10.0.0.1']));
    api.apply(slice('api-b', ['10.0.0.2']));
    const log = logUpdates(await start());
    await log.waitFor(at8080(1, 2));

    api.dropWatches();
    api.delete('api-a');
    api.apply(slice('api-c', ['10.0.0.3']));
    api.compact(); // the missed events are gone: only a list can tell
    await log.waitFor(at8080(2, 3));
    expect(api.requests.filter((r) => !r.watch)).toHaveLength(2);
    expect(errors).toEqual([]);

    // The HTTP-level form of 410 (some API server versions) re-lists too.
    api.failNext(410);
    api.dropWatches();
    api.apply(slice('api-d', ['10.0.0.4']));
    await log.waitFor(at8080(2, 3, 4));
    expect(api.requests.filter((r) => !r.watch)).toHaveLength(3);
  });

  it('backs off and reports failing lists and watches, then recovers', async () => {
    api.apply(slice('api-a', ['10.0.0.1']));
    api.failNext(500, 503, 403);
    const log = logUpdates(await start());
    await log.waitFor(at8080(1));
    expect(errors.map((e) => e.message)).toEqual([
      'kubernetes EndpointSlices of default/api: HTTP 500: injected 500; keeping the last good set',
      'kubernetes EndpointSlices of default/api: HTTP 503: injected 503; keeping the last good set',
      'kubernetes EndpointSlices of default/api: HTTP 403: injected 403; keeping the last good set',
    ]);

    api.failNext(500, 500);
    api.dropWatches();
    api.apply(slice('api-b', ['10.0.0.2']));
    await log.waitFor(at8080(1, 2));
    expect(errors).toHaveLength(5);
    expect(errors[3]!.message).toMatch(/HTTP 500/);
  });

  it('uses the namespace of the kubeconfig context, and says when it is not allowed in', async () => {
    api.apply(slice('api-a', ['10.0.0.7'], { namespace: 'prod' }));
    const log = logUpdates(await start({}, 'prod'));
    await log.waitFor(at8080(7));

    const kubeconfig = join(dir, 'bad-token');
    await writeFile(kubeconfig, api.kubeconfig().replace(/token: .*/, 'token: wrong'));
    const denied = logUpdates(await start({ kubeConfig: kubeconfig, namespace: 'prod' }));
    await eventually(() => errors.length > 0, 3_000, 'an error');
    expect(errors[0]!.message).toBe(
      'kubernetes EndpointSlices of prod/api: HTTP 401: Unauthorized; keeping the last good set',
    );
    expect(denied.updates).toEqual([]);
  });

  it('reports a kubeconfig that cannot be loaded, and retries it', async () => {
    api.apply(slice('api-a', ['10.0.0.1']));
    const kubeconfig = join(dir, 'not-yet');
    const log = logUpdates(await start({ kubeConfig: kubeconfig }));
    await eventually(() => errors.length > 0, 3_000, 'an error');
    expect(errors[0]!.message).toMatch(
      /^kubernetes EndpointSlices of default\/api: ENOENT: no such file or directory.*not-yet.*; keeping the last good set$/,
    );
    await writeFile(kubeconfig, api.kubeconfig());
    await log.waitFor(at8080(1));
  });

  it('close ends the watch and calls no listener afterwards', async () => {
    api.apply(slice('api-a', ['10.0.0.1']));
    const discovery = await start();
    const log = logUpdates(discovery);
    await log.waitFor(at8080(1));
    await eventually(() => api.openWatches() === 1, 2_000, 'the watch');
    await discovery.close();
    await eventually(() => api.openWatches() === 0, 2_000, 'the watch closed');
    api.apply(slice('api-b', ['10.0.0.2']));
    await new Promise((r) => setTimeout(r, 100));
    expect(log.updates).toHaveLength(1);
  });
});
