import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Status, statusName } from '@switchyard/core';
import {
  createTestClient,
  createTestServiceImpl,
  type RunningTestServer,
  startServer,
} from '@switchyard/testing';
import type { ClientError } from 'nice-grpc-common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCalls, startProxyProcess } from './support/proxy-process.js';

let backend: RunningTestServer;

beforeAll(async () => {
  backend = await startServer();
});

afterAll(async () => {
  await backend.stop();
});

function configWithGrace(grace: string, workers = 1): string {
  const dir = mkdtempSync(join(tmpdir(), 'proxy-kit-shutdown-'));
  const file = join(dir, 'proxy.yaml');
  writeFileSync(
    file,
    `listen: 127.0.0.1:0
workers: ${workers}
discovery: { type: static, endpoints: [${backend.address}] }
shutdown: { grace: ${grace} }
`,
  );
  return file;
}

describe('SIGTERM', () => {
  for (const workers of [1, 2]) {
    it(`with ${workers} worker(s): GOAWAY to clients, calls in flight finish, exit 0`, async () => {
      const proxy = await startProxyProcess(['--config', configWithGrace('10s', workers)]);
      const { client, close } = createTestClient(proxy.address);
      try {
        await runCalls(4, 2, () => client.unary({}));
        const inFlight = client.unary({ payload: 'slow', delayMs: 1_000 });
        await sleep(200);
        const signalledAt = Date.now();
        const exited = proxy.stop('SIGTERM');
        await sleep(200);
        // No new calls: the connection got GOAWAY and the port is closed.
        await expect(
          client.unary({}, { signal: AbortSignal.timeout(3_000) }),
        ).rejects.toMatchObject({
          code: Status.UNAVAILABLE,
        });
        expect((await inFlight).payload).toBe('slow');
        expect(await exited).toEqual({ code: 0, signal: null });
        expect(Date.now() - signalledAt).toBeLessThan(5_000);
      } finally {
        close();
      }
    });
  }

  it('exits 0 with a warning when the OpenTelemetry collector is down at the last export', async () => {
    // Port 1 on loopback: nothing listens, every export is refused.
    const proxy = await startProxyProcess(['--config', configWithGrace('2s')], {
      ...process.env,
      OTEL_SERVICE_NAME: 'proxy-kit',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_LOGS_EXPORTER: 'none',
      OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
    });
    const { client, close } = createTestClient(proxy.address);
    try {
      await runCalls(50, 5, () => client.unary({}));
    } finally {
      close();
    }
    expect(await proxy.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(proxy.output()).toMatch(/"msg":"telemetry: the last export failed/);
  });

  it('cuts calls still running when the grace period ends, and still exits 0', async () => {
    const proxy = await startProxyProcess(['--config', configWithGrace('300ms')]);
    const { client, close } = createTestClient(proxy.address);
    try {
      const tooSlow = client.unary({ delayMs: 5_000 }).catch((error: ClientError) => error);
      await sleep(200);
      const signalledAt = Date.now();
      expect(await proxy.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalledAt).toBeLessThan(2_500);
      expect(((await tooSlow) as ClientError).code).toBe(Status.UNAVAILABLE);
    } finally {
      close();
    }
  });
});

describe('SIGTERM under load', () => {
  // 100 calls in flight over 10 connections, to a fast and a slow backend, then SIGTERM: the
  // drain must serve every one of them (the two-step GOAWAY's point), 20 times over.
  let fast: RunningTestServer;
  let slow: RunningTestServer;
  let started = 0;
  const counting = (extraMs: number) => (name: string) => {
    const impl = createTestServiceImpl({ backend: name });
    return {
      ...impl,
      unary: async (...args: Parameters<typeof impl.unary>) => {
        started++;
        await sleep(extraMs);
        return impl.unary(...args);
      },
    };
  };

  beforeAll(async () => {
    fast = await startServer({ backend: 'fast', implementation: counting(20) });
    slow = await startServer({ backend: 'slow', implementation: counting(200) });
  });

  afterAll(async () => {
    await fast.stop();
    await slow.stop();
  });

  it('20 runs of 100 calls in flight on 10 connections: none fails, every run exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'proxy-kit-drain-'));
    const config = join(dir, 'proxy.yaml');
    writeFileSync(
      config,
      `listen: 127.0.0.1:0
workers: 1
balancer: round-robin
discovery: { type: static, endpoints: [${fast.address}, ${slow.address}] }
shutdown: { grace: 10s }
`,
    );
    const failures: string[] = [];
    for (let run = 0; run < 20; run++) {
      const proxy = await startProxyProcess(['--config', config]);
      const clients = Array.from({ length: 10 }, () => createTestClient(proxy.address));
      try {
        // One call per connection first, so that each is connected before the load starts.
        await Promise.all(clients.map(({ client }) => client.unary({})));
        started = 0;
        const calls = clients.flatMap(({ client }) =>
          Array.from({ length: 10 }, (_, i) =>
            client.unary({ payload: `call-${i}`, delayMs: i * 10 }).then(
              (response) => {
                if (response.payload !== `call-${i}`) failures.push(`run ${run}: wrong payload`);
              },
              (error: ClientError) => {
                failures.push(`run ${run}: ${statusName(error.code)} ${error.details}`);
              },
            ),
          ),
        );
        // Every call has reached a backend: all 100 are in flight when the signal comes.
        const deadline = Date.now() + 5_000;
        while (started < 100 && Date.now() < deadline) await sleep(2);
        expect(started, `run ${run}: calls that reached a backend`).toBe(100);
        const exited = proxy.stop('SIGTERM');
        await Promise.all(calls);
        expect(await exited, `run ${run}: exit`).toEqual({ code: 0, signal: null });
      } finally {
        for (const { close } of clients) close();
        await proxy.stop('SIGKILL');
      }
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
