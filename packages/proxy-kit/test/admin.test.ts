import { execFile, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  createTestClient,
  type MetricFamily,
  PYTHON,
  parsePrometheusText,
} from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redact } from '../src/admin.js';
import type { StatReport } from '../src/stat.js';
import { adminAddress, adminGet, adminJson, type EndpointsBody } from './support/admin.js';
import { type BackendProcess, startBackendProcess } from './support/backend-process.js';
import { CLI, startProxyProcess } from './support/proxy-process.js';

// The admin listener of the binary, read as an operator (or Prometheus) reads it.

let backends: BackendProcess[];

beforeAll(async () => {
  // The third is slower: peak-EWMA gives it a smaller share, so the shares `stat` reports are
  // not merely a third each.
  backends = await Promise.all([
    startBackendProcess('b1'),
    startBackendProcess('b2'),
    startBackendProcess('b3', 4),
  ]);
});

afterAll(async () => {
  await Promise.all(backends.map((b) => b.stop()));
});

function sample(families: Map<string, MetricFamily>, name: string, labels: Record<string, string>) {
  const found = families
    .get(name)
    ?.samples.find((s) => Object.entries(labels).every(([key, value]) => s.labels[key] === value));
  return found?.value ?? 0;
}

/**
 * Every sample of a scrape as the Prometheus project's own Python client parses it
 * (`prometheus_client.parser`, Debian's python3-prometheus-client): a parser we did not write,
 * which raises on text that is not valid exposition format.
 */
function parsedByPrometheusClient(
  text: string,
): Promise<{ name: string; labels: Record<string, string>; value: number }[]> {
  const script = `import json, sys
from prometheus_client.parser import text_string_to_metric_families
print(json.dumps([{"name": s.name, "labels": s.labels, "value": s.value}
  for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]))`;
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolve(JSON.parse(stdout))
        : reject(new Error(`prometheus_client (Debian: python3-prometheus-client): ${stderr}`)),
    );
    child.stdin.end(text);
  });
}

describe('the admin listener', () => {
  it('is off unless asked for, and on --admin serves /live, /ready, /config', async () => {
    const plain = await startProxyProcess(['--upstream', backends[0]!.address]);
    try {
      await sleep(200);
      expect(plain.output()).not.toContain('admin listening');
    } finally {
      await plain.stop();
    }
    const proxy = await startProxyProcess([
      '--upstream',
      backends.map((b) => b.address).join(','),
      '--admin',
      '127.0.0.1:0',
    ]);
    try {
      const admin = await adminAddress(proxy);
      expect(admin).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(await adminGet(admin, '/live')).toEqual({ status: 200, body: 'live\n' });
      expect(await adminGet(admin, '/ready')).toEqual({ status: 200, body: 'ready\n' });
      const config = await adminJson<{ config: { balancer: string; discovery: unknown } }>(
        admin,
        '/config',
      );
      expect(config.config.balancer).toBe('p2c-ewma');
      expect(JSON.stringify(config.config.discovery)).toContain(backends[2]!.address);
      expect((await adminGet(admin, '/nope')).status).toBe(404);
      // Draining: not ready while a call in flight finishes after SIGTERM.
      const { client, close } = createTestClient(proxy.address);
      const slow = client.unary({ delayMs: 1_000 });
      await sleep(100);
      proxy.child.kill('SIGTERM');
      await sleep(200);
      expect(await adminGet(admin, '/ready')).toEqual({
        status: 503,
        body: 'not ready: draining\n',
      });
      await slow;
      close();
    } finally {
      await proxy.stop();
    }
  });

  it('/metrics, parsed as Prometheus text, has per-endpoint series that move with traffic', async () => {
    const proxy = await startProxyProcess(
      ['--upstream', backends.map((b) => b.address).join(','), '--admin', '127.0.0.1:0'],
      // The middleware's names as the test reads them: the conventions' legacy default.
      Object.fromEntries(
        Object.entries(process.env).filter(([key]) => key !== 'OTEL_SEMCONV_STABILITY_OPT_IN'),
      ),
    );
    const { client, close } = createTestClient(proxy.address);
    try {
      const admin = await adminAddress(proxy);
      let lastText = '';
      const scrape = async () => {
        lastText = (await adminGet(admin, '/metrics')).body;
        return parsePrometheusText(lastText);
      };
      await Promise.all(Array.from({ length: 30 }, () => client.unary({})));
      const before = await scrape();
      for (let i = 0; i < 200; i += 10) {
        await Promise.all(Array.from({ length: 10 }, () => client.unary({})));
      }
      await client.unary({ statusCode: 5 }).catch(() => {}); // NOT_FOUND, an application answer
      const after = await scrape();

      const moved = backends.map((b) => {
        const labels = { upstream: 'default', endpoint: b.address, grpc_status: 'OK' };
        return (
          sample(after, 'proxykit_endpoint_calls_total', labels) -
          sample(before, 'proxykit_endpoint_calls_total', labels)
        );
      });
      // Every call went to one endpoint, and each endpoint took some.
      expect(moved.reduce((a, b) => a + b, 0)).toBe(200);
      // The Prometheus client's parser reads the same scrape to the same per-endpoint counts.
      const reference = await parsedByPrometheusClient(lastText);
      for (const b of backends) {
        const labels = { upstream: 'default', endpoint: b.address, grpc_status: 'OK' };
        const theirs = reference.find(
          (r) =>
            r.name === 'proxykit_endpoint_calls_total' &&
            Object.entries(labels).every(([key, value]) => r.labels[key] === value),
        );
        expect(theirs?.value, b.address).toBe(
          sample(after, 'proxykit_endpoint_calls_total', labels),
        );
      }
      for (const count of moved) expect(count).toBeGreaterThan(0);
      const route = { route: 'routes[0]' };
      expect(
        sample(after, 'proxykit_route_calls_total', { ...route, grpc_status: 'OK' }) -
          sample(before, 'proxykit_route_calls_total', { ...route, grpc_status: 'OK' }),
      ).toBe(200);
      expect(
        sample(after, 'proxykit_route_calls_total', { ...route, grpc_status: 'NOT_FOUND' }),
      ).toBe(1);
      // Latency histograms per endpoint (the middleware's, per method and status too), whose
      // counts moved by the OK calls each endpoint took.
      const okCount = (families: typeof after, address: string) =>
        families
          .get('rpc_client_call_duration')!
          .histograms.filter(
            (h) =>
              `${h.labels.server_address}:${h.labels.server_port}` === address &&
              h.labels.rpc_response_status_code === 'OK',
          )
          .reduce((sum, h) => sum + h.count, 0);
      for (const [i, b] of backends.entries()) {
        expect(okCount(after, b.address) - okCount(before, b.address)).toBe(moved[i]);
        expect(sample(after, 'proxykit_endpoint_ready', { endpoint: b.address })).toBe(1);
        expect(sample(after, 'proxykit_endpoint_ewma', { endpoint: b.address })).toBeGreaterThan(0);
        expect(
          sample(after, 'proxykit_endpoint_connections', { endpoint: b.address }),
        ).toBeGreaterThan(0);
      }
      expect(after.get('proxykit_route_duration')!.histograms[0]!.count).toBe(231);
      expect(sample(after, 'proxykit_inbound_calls_total', { grpc_status: 'OK' })).toBe(230);
      expect(sample(after, 'proxykit_inbound_connections', {})).toBe(1);
      // The middleware's own instruments, as the apps report them: per method and per endpoint.
      expect([...after.keys()].some((name) => name.startsWith('rpc_server_'))).toBe(true);
      expect([...after.keys()].some((name) => name.startsWith('rpc_client_'))).toBe(true);
    } finally {
      close();
      await proxy.stop();
    }
  });

  it('/endpoints shows an ejection within a second of it', async () => {
    const proxy = await startProxyProcess([
      '--upstream',
      `${backends[0]!.address},${backends[1]!.address}`,
      '--balancer',
      'round-robin',
      '--admin',
      '127.0.0.1:0',
    ]);
    const { client, close } = createTestClient(proxy.address);
    try {
      const admin = await adminAddress(proxy);
      await Promise.all(Array.from({ length: 10 }, () => client.unary({})));
      let seenAt: number | undefined;
      let view: EndpointsBody | undefined;
      const watching = (async () => {
        for (let i = 0; i < 100 && seenAt === undefined; i++) {
          view = await adminJson<EndpointsBody>(admin, '/endpoints');
          if (view.upstreams[0]!.endpoints.some((e) => e.state === 'ejected')) seenAt = Date.now();
          else await sleep(25);
        }
      })();
      // UNAVAILABLE from both: the first to fail 7 times in a row is ejected (one at most, the
      // ejection cap), the other keeps taking calls.
      for (let i = 0; i < 20; i++) await client.unary({ statusCode: 14 }).catch(() => {});
      await watching;
      const logged = proxy
        .output()
        .split('\n')
        .find((line) => line.includes('"msg":"endpoint ejected"'));
      expect(logged).toBeDefined();
      const ejectedAt = Date.parse((JSON.parse(logged!) as { time: string }).time);
      expect(seenAt).toBeDefined();
      expect(seenAt! - ejectedAt).toBeLessThan(1_000);
      const ejected = view!.upstreams[0]!.endpoints.find((e) => e.state === 'ejected')!;
      expect(ejected).toMatchObject({ ejections: 1, successes: 10 / 2 });
      expect(ejected.reason).toMatch(/eject/);
      expect(ejected.failures).toBeGreaterThanOrEqual(7);
    } finally {
      close();
      await proxy.stop();
    }
  });

  it('`stat --once` prints shares that match the backends’ own counts (±5 %)', async () => {
    const proxy = await startProxyProcess([
      '--upstream',
      backends.map((b) => b.address).join(','),
      '--admin',
      '127.0.0.1:0',
    ]);
    const { client, close } = createTestClient(proxy.address);
    const counts = new Map<string, number>();
    let counting = false;
    let running = true;
    const load = Array.from({ length: 6 }, async () => {
      // Bounded: the stat window is 2 s; this stops after 20 s whatever happens.
      const until = performance.now() + 20_000;
      while (running && performance.now() < until) {
        const { backend } = await client.unary({});
        if (counting) counts.set(backend, (counts.get(backend) ?? 0) + 1);
      }
    });
    try {
      const admin = await adminAddress(proxy);
      await sleep(1_000); // EWMA settles on each backend's latency
      counting = true;
      const run = promisify(execFile)(
        process.execPath,
        [CLI, 'stat', '--admin', admin, '--once', '--json'],
        {
          timeout: 15_000,
        },
      );
      const { stdout } = await run;
      counting = false;
      const table = await promisify(execFile)(
        process.execPath,
        [CLI, 'stat', '--admin', admin, '--once', '--window', '0.5'],
        { timeout: 15_000 },
      );
      running = false;
      await Promise.all(load);
      const report = JSON.parse(stdout) as StatReport;
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      expect(total).toBeGreaterThan(200);
      expect(report.endpoints).toHaveLength(3);
      for (const b of backends) {
        const row = report.endpoints.find((e) => e.address === b.address)!;
        const share = (counts.get(b.backend) ?? 0) / total;
        expect(
          Math.abs(row.share! - share),
          `${b.backend}: stat ${row.share}, backend ${share}`,
        ).toBeLessThanOrEqual(0.05);
        expect(row.successRate).toBe(1);
        expect(row.p50Ms).toBeGreaterThan(0);
        expect(row.p99Ms!).toBeGreaterThanOrEqual(row.p50Ms!);
      }
      // The slow backend's p50 shows its 4 ms.
      expect(
        report.endpoints.find((e) => e.address === backends[2]!.address)!.p50Ms,
      ).toBeGreaterThan(3);
      expect(report.routes[0]).toMatchObject({ name: 'routes[0]', successRate: 1 });
      expect(table.stdout).toMatch(/^ROUTE\s+RPS\s+SUCCESS\s+P50\s+P99\n/);
      expect(table.stdout).toContain(backends[2]!.address);
    } finally {
      running = false;
      close();
      await proxy.stop();
    }
  });

  it('`stat` against no admin listener says so in one line, exit code 2', async () => {
    const failed = await promisify(execFile)(process.execPath, [
      CLI,
      'stat',
      '--admin',
      '127.0.0.1:1',
      '--once',
    ]).catch((error: { code: number; stderr: string }) => error);
    expect(failed).toMatchObject({ code: 2 });
    expect((failed as { stderr: string }).stderr).toMatch(
      /^proxy-kit stat: cannot reach the admin listener at http:\/\/127\.0\.0\.1:1: .*\n$/,
    );
  });
});

describe('redact', () => {
  it('hides keys, tokens and certificate bytes in what /config shows', () => {
    expect(
      redact({
        listen: { tls: { cert: 'server.pem', key: 'server-key.pem' } },
        upstream: { tls: { ca: Buffer.from('pem') } },
        discovery: { type: 'kubernetes', token: 'abc' },
        outlier: { consecutiveFailures: 7 },
      }),
    ).toEqual({
      listen: { tls: { cert: 'server.pem', key: '[redacted]' } },
      upstream: { tls: { ca: '[redacted]' } },
      discovery: { type: 'kubernetes', token: '[redacted]' },
      outlier: { consecutiveFailures: 7 },
    });
  });
});
