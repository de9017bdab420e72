import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startBackendsOnOnePort } from '../../discovery/test/support/backends.js';
import {
  type FakeKubeApi,
  type Slice,
  startFakeKubeApi,
} from '../../discovery/test/support/fake-kube-api.js';
import { type BalancedChannel, createBalancedChannel } from '../src/index.js';
import { callMany, connectedTo, keepCalling } from './support/load.js';
import { startPod } from './support/pod.js';

type Conditions = NonNullable<NonNullable<Slice['endpoints']>[number]['conditions']>;
const ready: Conditions = { ready: true, serving: true, terminating: false };
const notReady: Conditions = { ready: false, serving: false, terminating: false };
const terminatingServing: Conditions = { ready: false, serving: true, terminating: true };

/** Pods on 127.0.0.1 … 127.0.0.5, one port for all, as a Service's pods have. */
const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

let api: FakeKubeApi;
let dir: string;
let backends: Awaited<ReturnType<typeof startBackendsOnOnePort>>;
const channels: BalancedChannel[] = [];
beforeEach(async () => {
  api = await startFakeKubeApi();
  dir = await mkdtemp(join(tmpdir(), 'switchyard-balanced-k8s-'));
  backends = await startBackendsOnOnePort(HOSTS);
});
afterEach(async () => {
  for (const channel of channels.splice(0)) channel.close();
  await backends.close();
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

/** An EndpointSlice of Service `api` in `default`, its `grpc` port the backends' port. */
function slice(name: string, endpoints: [string, Conditions][]): Slice {
  return {
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'api' } },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port: backends.port, protocol: 'TCP' }],
    endpoints: endpoints.map(([ip, conditions]) => ({
      addresses: [ip],
      conditions,
      targetRef: { kind: 'Pod', name: `api-${ip.split('.').at(-1)}`, namespace: 'default' },
    })),
  };
}

async function channel(options: { balancer?: 'round-robin' } = {}) {
  const kubeConfig = join(dir, 'kubeconfig');
  await writeFile(kubeConfig, api.kubeconfig());
  const created = createBalancedChannel('k8s:///api.default:grpc', {
    ...options,
    kubernetes: { kubeConfig, backoff: { baseMs: 20, maxMs: 100 } },
    onError: (error) => {
      throw error;
    },
  });
  channels.push(created);
  return created;
}

const at = (host: string) => `${host}:${backends.port}`;

describe('k8s:///service.namespace:port', () => {
  it('sees a Service whose endpoints span several EndpointSlices whole: every ready endpoint, nothing else', async () => {
    api.apply(slice('api-a', [['127.0.0.1', ready]]));
    api.apply(
      slice('api-b', [
        ['127.0.0.2', ready],
        ['127.0.0.4', notReady],
      ]),
    );
    api.apply(
      slice('api-c', [
        ['127.0.0.3', ready],
        // Serving while it terminates: used only if no endpoint were ready (kube-proxy's rule).
        ['127.0.0.5', terminatingServing],
      ]),
    );
    const balanced = await channel({ balancer: 'round-robin' });
    await connectedTo(balanced, ['127.0.0.1', '127.0.0.2', '127.0.0.3'].map(at));
    const log = await callMany(balanced, { calls: 300 });
    expect(log.failures).toEqual([]);
    expect(Object.keys(log.counts()).sort()).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  });

  it('loses no call when a slice is added and another removed mid-load, its pod shutting down', async () => {
    // The pod of the slice that goes: a server of its own, so that it can stop as pods do.
    const leaving = await startPod('127.0.0.6', backends.port);
    api.apply(slice('api-a', [['127.0.0.1', ready]]));
    api.apply(slice('api-b', [['127.0.0.6', ready]]));
    const balanced = await channel();
    await connectedTo(balanced, ['127.0.0.1', '127.0.0.6'].map(at));
    const load = keepCalling(balanced, { concurrency: 8, delayMs: 5 });
    await load.answeredBy('127.0.0.6', 20);

    // A rollout adds a slice: its endpoints take calls without a restart.
    api.apply(
      slice('api-c', [
        ['127.0.0.3', ready],
        ['127.0.0.4', ready],
      ]),
    );
    await load.answeredBy('127.0.0.3', 20);
    await load.answeredBy('127.0.0.4', 20);

    // A slice goes away while calls to its endpoint are in flight, and its pod shuts down
    // gracefully at the same time (GOAWAY): calls in flight finish, new ones go elsewhere.
    api.delete('api-b');
    const stopped = leaving.shutdown();
    await connectedTo(balanced, ['127.0.0.1', '127.0.0.3', '127.0.0.4'].map(at));
    await stopped;
    const removedAt = load.log.backends.length;
    for (const host of ['127.0.0.1', '127.0.0.3', '127.0.0.4']) await load.answeredBy(host, 30);
    const log = await load.stop();

    expect(log.failures).toEqual([]);
    // Calls already on 127.0.0.6 when it left may answer after; none is sent there later.
    const after = log.backends.slice(removedAt + 8);
    expect(after.length).toBeGreaterThan(50);
    expect(after).not.toContain('127.0.0.6');
  });

  it('follows endpoint conditions: a pod turning not ready stops taking calls, without a restart', async () => {
    api.apply(
      slice('api-a', [
        ['127.0.0.1', ready],
        ['127.0.0.2', ready],
      ]),
    );
    const balanced = await channel();
    await connectedTo(balanced, ['127.0.0.1', '127.0.0.2'].map(at));
    const load = keepCalling(balanced, { concurrency: 4, delayMs: 2 });
    await load.answeredBy('127.0.0.2', 10);
    api.apply(
      slice('api-a', [
        ['127.0.0.1', ready],
        ['127.0.0.2', terminatingServing],
      ]),
    );
    await connectedTo(balanced, [at('127.0.0.1')]);
    const changedAt = load.log.backends.length;
    await load.answeredBy('127.0.0.1', 50);
    const log = await load.stop();
    expect(log.failures).toEqual([]);
    expect(log.backends.slice(changedAt + 4)).not.toContain('127.0.0.2');
  });
});
