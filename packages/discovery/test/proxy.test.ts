/**
 * The issue's "Must show" for discovery, through the real `proxy-kit` binary: endpoints added and
 * removed via a file, DNS and the Kubernetes API take effect within one interval, and calls in
 * flight on a removed endpoint finish (it drains) — not one call fails.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestClient } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { startBackendsOnOnePort } from './support/backends.js';
import { startDnsServer } from './support/dns-server.js';
import { startFakeKubeApi } from './support/fake-kube-api.js';
import { startProxyBinary } from './support/proxy-binary.js';
import { eventually } from './support/updates.js';

const intervalMs = 500;
// Slack over one interval for a loaded 2-core machine.
const slackMs = 250;
const [b1, b2, b3] = ['127.0.0.2', '127.0.0.3', '127.0.0.4'] as const;

/** A `discovery:` section for proxy.yaml, and how the test changes what it finds. */
interface Source {
  discovery: string;
  set(hosts: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

const sources: Record<string, (port: number, dir: string) => Promise<Source>> = {
  async file(port, dir) {
    const path = join(dir, 'endpoints.yaml');
    const set = async (hosts: readonly string[]) => {
      await writeFile(
        `${path}.tmp`,
        `endpoints: [${hosts.map((h) => `"${h}:${port}"`).join(', ')}]\n`,
      );
      await rename(`${path}.tmp`, path);
    };
    await set([b1, b2]);
    return {
      discovery: `{ type: file, path: ${path}, interval: ${intervalMs}ms }`,
      set,
      close: async () => {},
    };
  },
  async dns(port) {
    const name = 'api.prod.svc.cluster.local';
    const dns = await startDnsServer({ [name]: { A: [b1, b2] } });
    return {
      discovery: `{ type: dns, name: ${name}, port: ${port}, recordType: A, interval: ${intervalMs}ms, servers: ["${dns.server}"] }`,
      set: async (hosts) => {
        dns.state.zones[name] = { A: [...hosts] };
      },
      close: dns.close,
    };
  },
  async kubernetes(port, dir) {
    const api = await startFakeKubeApi();
    await writeFile(join(dir, 'kubeconfig'), api.kubeconfig());
    // Two slices, as the EndpointSlice controller splits a service: one fixed, one changing.
    const slice = (name: string, hosts: readonly string[]) =>
      api.apply({
        metadata: { name, labels: { 'kubernetes.io/service-name': 'api' } },
        addressType: 'IPv4',
        ports: [{ name: 'grpc', port, protocol: 'TCP' }],
        endpoints: hosts.map((h) => ({ addresses: [h], conditions: { ready: true } })),
      });
    const set = async (hosts: readonly string[]) => {
      slice('api-fixed', hosts.includes(b2) ? [b2] : []);
      slice(
        'api-moving',
        hosts.filter((h) => h !== b2),
      );
    };
    await set([b1, b2]);
    return {
      discovery: `{ type: kubernetes, service: api, port: grpc, kubeconfig: ${join(dir, 'kubeconfig')} }`,
      set,
      close: api.close,
    };
  },
};

/** Now on the clock pino stamps its lines with (epoch ms), at sub-millisecond precision. */
const now = () => performance.timeOrigin + performance.now();

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.each(Object.keys(sources))('the proxy with %s discovery', (kind) => {
  it('adds and removes endpoints within one interval, draining the removed one without a failed call', async () => {
    const backends = await startBackendsOnOnePort([b1, b2, b3]);
    cleanups.push(backends.close);
    const dir = await mkdtemp(join(tmpdir(), `switchyard-proxy-${kind}-`));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const source = await sources[kind]!(backends.port, dir);
    cleanups.push(source.close);
    // Round-robin keeps calls in flight on every endpoint, so the removal has some to drain.
    const proxy = await startProxyBinary(
      dir,
      `listen: 127.0.0.1:0\nbalancer: round-robin\ndiscovery: ${source.discovery}\n`,
    );
    cleanups.push(proxy.stop);
    const logged = (msg: string, endpoint: string) =>
      proxy.logs.find((l) => l.msg === msg && l.endpoint === `${endpoint}:${backends.port}`);
    const { client, close } = createTestClient(`127.0.0.1:${proxy.port}`);
    cleanups.push(close);

    // Six callers in a loop, each call held 200 ms by its backend: ~2 in flight per endpoint.
    // Staggered, so that a call starts every ~33 ms rather than six every 200 ms.
    const calls: { backend: string; startedAt: number; endedAt: number }[] = [];
    const failures: unknown[] = [];
    let running = true;
    const callers = Array.from({ length: 6 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 33));
      while (running) {
        const startedAt = now();
        try {
          const { backend } = await client.unary({ delayMs: 200 });
          calls.push({ backend, startedAt, endedAt: now() });
        } catch (error) {
          failures.push(error);
        }
      }
    });
    try {
      await eventually(
        () => new Set(calls.map((c) => c.backend)).size === 2,
        5_000,
        'calls on b1 and b2',
      );

      const addedAt = now();
      await source.set([b1, b2, b3]);
      await eventually(() => calls.some((c) => c.backend === b3), 5_000, 'a call on the added b3');
      const firstOnB3 = calls.find((c) => c.backend === b3)!;
      expect(firstOnB3.startedAt - addedAt).toBeLessThan(intervalMs + slackMs);

      expect(logged('endpoint added', b3)!.time - addedAt).toBeLessThan(intervalMs + slackMs);

      const removedAt = now();
      await source.set([b2, b3]);
      await eventually(() => !!logged('endpoint removed; draining', b1), 5_000, 'b1 removed');
      const removal = logged('endpoint removed; draining', b1)!.time;
      expect(removal - removedAt).toBeLessThan(intervalMs + slackMs);
      await new Promise((r) => setTimeout(r, 600));
      running = false;
      await Promise.all(callers);

      expect(failures).toEqual([]);
      const onB1 = calls.filter((c) => c.backend === b1);
      // Calls that were running on b1 when it was removed finished there (it drained)…
      expect(
        onB1.filter((c) => c.startedAt < removal && c.endedAt > removal).length,
      ).toBeGreaterThan(0);
      await eventually(() => !!logged('endpoint drained', b1), 2_000, 'b1 drained');
      // …and no call that started after the removal went there (pino stamps whole milliseconds).
      expect(onB1.filter((c) => c.startedAt > removal + 1)).toEqual([]);
      expect(calls.filter((c) => c.startedAt > removal + 1).length).toBeGreaterThan(0);
    } finally {
      running = false;
      await Promise.all(callers);
    }
  });
});
