import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HealthDefinition } from '@switchyard/middleware-health';
import { type Channel, createChannel, createClient } from 'nice-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The Kubernetes API server of discovery's own tests: EndpointSlice list and watch over TLS with
// a bearer token, in the API's shapes.
import {
  type FakeKubeApi,
  startFakeKubeApi,
} from '../../../packages/discovery/test/support/fake-kube-api.js';
import { ShopDefinition } from '../../observability/src/gen/shop/v1/shop.js';
import { findManifest } from './manifests.js';

// The example's pods as processes on this machine, run from the repository root as the image
// runs them (its WORKDIR is the repository): each container's command, args and env from the
// manifests, with what a cluster would supply — the pod's own IP (loopback addresses here), its
// name, the ConfigMap mounted, the API server (a kubeconfig, as the service account's token and
// CA would be in a pod). The catalog's EndpointSlices are written as the EndpointSlice
// controller writes them for the headless Service.

const root = fileURLToPath(new URL('../../..', import.meta.url));
const NAMESPACE = 'switchyard-example';
const PODS = [
  { name: 'catalog-5d8f7-a1', ip: '127.0.0.2' },
  { name: 'catalog-5d8f7-b2', ip: '127.0.0.3' },
  { name: 'catalog-5d8f7-c3', ip: '127.0.0.4' },
] as const;

interface Container {
  command: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  volumeMounts?: { mountPath: string }[];
}
interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
}

const podSpec = (deployment: string) =>
  (findManifest('Deployment', deployment).spec as { template: { spec: PodSpec } }).template.spec;
const proxyYaml = (findManifest('ConfigMap', 'proxy-kit').data as Record<string, string>)[
  'proxy.yaml'
] as string;

const children: ChildProcess[] = [];
const channels: Channel[] = [];
let dir: string;
let api: FakeKubeApi;
let port: number;

/** Runs a container's command as a process; resolves with its first JSON line on stdout. */
async function run(
  container: Container,
  env: Record<string, string>,
  argv: (args: string[]) => string[] = (args) => args,
): Promise<{ child: ChildProcess; first: Record<string, unknown> }> {
  const [command, ...rest] = [...container.command, ...(container.args ?? [])];
  expect(command).toBe('node');
  const own = Object.fromEntries(
    (container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]),
  );
  // The ConfigMap's mount is this test's directory.
  const mounted = argv(rest).map((arg) =>
    (container.volumeMounts ?? []).reduce(
      (a, mount) =>
        a.startsWith(`${mount.mountPath}/`) ? join(dir, a.slice(mount.mountPath.length + 1)) : a,
      arg,
    ),
  );
  const child = spawn(process.execPath, mounted, {
    cwd: root,
    env: { PATH: process.env.PATH, ...own, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    const first = JSON.parse(line) as Record<string, unknown>;
    if (first.msg === undefined || first.msg === 'listening') return { child, first };
  }
  throw new Error(`${mounted.join(' ')} exited (${child.exitCode}): ${stderr}`);
}

/** One catalog pod of 10-catalog.yaml on its address and the port every pod shares. */
async function startCatalogPod(pod: (typeof PODS)[number], onPort: number) {
  const { child, first } = await run(podSpec('catalog').containers[0] as Container, {
    SERVICE: pod.name, // fieldRef metadata.name
    GRPC_ADDRESS: `${pod.ip}:${onPort}`,
    // The pod binds every interface of its own network namespace; this machine is shared.
    OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
    OTEL_EXPORTER_PROMETHEUS_PORT: '0',
  });
  return { child, port: Number(String(first.grpc).split(':').pop()) };
}

/** The catalog's EndpointSlice, as the controller writes it: these pods, ready or not. */
function sliceOf(pods: { pod: (typeof PODS)[number]; ready: boolean }[]) {
  api.apply({
    metadata: {
      name: 'catalog-x7k2p',
      namespace: NAMESPACE,
      labels: {
        'kubernetes.io/service-name': 'catalog',
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
    },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port, protocol: 'TCP' }],
    endpoints: pods.map(({ pod, ready }) => ({
      addresses: [pod.ip],
      conditions: { ready, serving: true, terminating: !ready },
      targetRef: { kind: 'Pod', name: pod.name, namespace: NAMESPACE },
    })),
  });
}

/** Starts proxy-kit from a container of the manifests, listening on 127.0.0.1:<free port>. */
async function startProxyKit(container: Container, listen: (args: string[]) => string[]) {
  const { first } = await run(container, { KUBECONFIG: join(dir, 'kubeconfig') }, listen);
  return String(first.address);
}

function shopClient(address: string) {
  const channel = createChannel(address);
  channels.push(channel);
  return createClient(ShopDefinition, channel);
}

/**
 * Who served 80 calls made 8 at a time, each taking 5 ms: calls in flight weigh on peak-EWMA's
 * cost, so concurrent calls spread over the pods (calls one at a time all go to the fastest).
 */
async function spread(shop: ReturnType<typeof shopClient>): Promise<Set<string>> {
  const served = new Set<string>();
  for (let round = 0; round < 10; round++) {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => shop.getOrder({ orderId: `o-${round}-${i}`, workMs: 5 })),
    );
    for (const answer of answers) served.add(answer.servedBy);
  }
  return served;
}

/** Health Checks until SERVING (a readiness probe's question), bounded. */
async function waitServing(address: string): Promise<void> {
  const channel = createChannel(address);
  channels.push(channel);
  const health = createClient(HealthDefinition, channel);
  const until = Date.now() + 10_000;
  for (;;) {
    const status = await health.check({ service: '' }).then(
      (r) => r.status,
      () => undefined,
    );
    if (status === 1) return; // SERVING
    if (Date.now() > until) throw new Error(`${address} not SERVING after 10 s (${status})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-k8s-'));
  api = await startFakeKubeApi();
  await writeFile(join(dir, 'kubeconfig'), api.kubeconfig(NAMESPACE));
  await writeFile(join(dir, 'proxy.yaml'), proxyYaml);
  // Pods of a Service share its target port: the first pod's free port, then the others on it
  // (another address may have that port taken: then again, on a new one).
  for (let attempt = 1; ; attempt++) {
    const started: ChildProcess[] = [];
    try {
      const first = await startCatalogPod(PODS[0], 0);
      started.push(first.child);
      port = first.port;
      for (const pod of PODS.slice(1)) started.push((await startCatalogPod(pod, port)).child);
      break;
    } catch (error) {
      for (const child of started) child.kill('SIGKILL');
      if (attempt === 3) throw error;
    }
  }
  sliceOf([
    { pod: PODS[0], ready: true },
    { pod: PODS[1], ready: true },
  ]);
}, 30_000);

afterAll(async () => {
  for (const channel of channels) channel.close();
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await api?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('proxy-kit with the example config, on an API server speaking list and watch', () => {
  let proxy: string;
  beforeAll(async () => {
    const container = podSpec('proxy-kit').containers[0] as Container;
    // The pod listens on 0.0.0.0:4140 in its own network namespace; here, loopback.
    proxy = await startProxyKit(container, (args) => [...args, '--listen', '127.0.0.1:0']);
  }, 20_000);

  it('is ready once it can route: a health Check through it is answered SERVING', async () => {
    await waitServing(proxy);
  });

  it('lists, then watches, the headless Service’s EndpointSlices in its namespace', () => {
    const asked = api.requests.map((r) => ({
      watch: r.watch,
      labelSelector: r.query.get('labelSelector'),
    }));
    expect(asked).toContainEqual({
      watch: false,
      labelSelector: 'kubernetes.io/service-name=catalog',
    });
    expect(asked).toContainEqual({
      watch: true,
      labelSelector: 'kubernetes.io/service-name=catalog',
    });
    expect(api.openWatches()).toBeGreaterThanOrEqual(1);
  });

  it('balances calls over the ready pods, follows the slice as pods come and go, fails none', async () => {
    const shop = shopClient(proxy);
    let failed = 0;
    const call = async (i: number) => {
      try {
        return (await shop.getOrder({ orderId: `o-${i}`, workMs: 5 }, {})).servedBy;
      } catch {
        failed++;
        return 'failed';
      }
    };
    /**
     * Calls 8 at a time, bounded in count and time, until `done` holds for the last 24 answers.
     * Concurrent, as in {@link spread}: peak-EWMA prices a pod it has not measured yet at 30 ms
     * (Linkerd's default) decaying with τ = 10 s, so calls made one at a time to pods answering in
     * a millisecond left a new pod idle for seconds (longer than this test waited, at times);
     * calls in flight weigh on the measured pods' cost and the new one is tried at once.
     */
    const until = async (done: (recent: string[]) => boolean) => {
      const served: string[] = [];
      const deadline = Date.now() + 10_000;
      for (
        let i = 0;
        i < 2_000 && Date.now() < deadline && !(served.length >= 24 && done(served.slice(-24)));
        i += 8
      ) {
        served.push(...(await Promise.all(Array.from({ length: 8 }, (_, j) => call(i + j)))));
      }
      return done(served.slice(-24));
    };

    expect(await spread(shop)).toEqual(new Set([PODS[0].name, PODS[1].name]));

    // A third pod becomes ready: the watch brings it, and calls reach it.
    sliceOf(PODS.map((pod) => ({ pod, ready: true })));
    expect(await until((recent) => recent.includes(PODS[2].name))).toBe(true);

    // The first one is terminating (ready false): it gets no more calls.
    sliceOf(PODS.map((pod, i) => ({ pod, ready: i !== 0 })));
    expect(await until((recent) => !recent.includes(PODS[0].name))).toBe(true);
    expect(await spread(shop)).toEqual(new Set([PODS[1].name, PODS[2].name]));
    expect(failed).toBe(0);
  }, 30_000);
});

describe('proxy-kit as the storefront’s sidecar', () => {
  it('takes the storefront’s calls on loopback and balances them over the catalog pods', async () => {
    const spec = podSpec('storefront');
    const sidecar = spec.initContainers?.[0] as Container;
    const sidecarAddress = await startProxyKit(sidecar, (args) => {
      // The sidecar's own --listen, on loopback; here on a free port rather than 4140.
      const at = args.indexOf('--listen');
      expect(args[at + 1]).toBe('127.0.0.1:4140');
      return args.map((arg, i) => (i === at + 1 ? '127.0.0.1:0' : arg));
    });
    const { first } = await run(spec.containers[0] as Container, {
      GRPC_ADDRESS: '127.0.0.1:0',
      NEXT: sidecarAddress, // 127.0.0.1:4140 in the pod
      OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
      OTEL_EXPORTER_PROMETHEUS_PORT: '0',
    });
    const storefront = String(first.grpc);
    // Its readiness probe: SERVING once the sidecar answers for a catalog pod.
    await waitServing(storefront);
    const shop = shopClient(storefront);
    const served = await spread(shop);
    const ready = [PODS[1].name, PODS[2].name].map((pod) => `storefront > ${pod}`);
    expect(served).toEqual(new Set(ready));
  }, 30_000);
});
