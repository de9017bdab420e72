import { setTimeout as sleep } from 'node:timers/promises';
import { Status } from '@switchyard/core';
import { staticDiscovery } from '@switchyard/discovery';
import { HealthDefinition, HealthServiceImpl, HealthState } from '@switchyard/middleware-health';
import {
  createTestClient,
  createTestServiceImpl,
  type RunningTestServer,
  startServer,
  startServers,
  TestServiceDefinition,
} from '@switchyard/testing';
import { createServer } from 'nice-grpc';
import { ServerError } from 'nice-grpc-common';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../src/index.js';
import { startBackendProcess } from './support/backend-process.js';
import { captureLogs } from './support/log-capture.js';
import { runCalls } from './support/proxy-process.js';
import { startRawBackend } from './support/raw-http2.js';

describe('GOAWAY from a backend', () => {
  it('lets calls in flight finish there and sends new calls elsewhere', async () => {
    const backends = await startServers(2);
    const proxy = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery(backends.addresses),
      balancer: 'round-robin',
    });
    const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
    try {
      await runCalls(10, 2, () => client.unary({})); // both connections up
      const long = Array.from({ length: 4 }, () => client.unary({ delayMs: 800 }));
      await sleep(100);
      // Calls keep coming while the backend announces GOAWAY: those that cross it are refused
      // unprocessed by the backend and replayed on the other one; none fails.
      const racing = runCalls(100, 8, () => client.unary({}));
      const stopping = backends.servers[0]!.stop(); // graceful: GOAWAY, in-flight finishes
      await racing;
      const after = await runCalls(50, 4, () => client.unary({}));
      expect(after.every((r) => r.backend === 'backend-1')).toBe(true);
      const finished = await Promise.all(long);
      expect(finished.map((r) => r.backend).sort()).toEqual([
        'backend-0',
        'backend-0',
        'backend-1',
        'backend-1',
      ]);
      await stopping;
    } finally {
      close();
      await proxy.close(500);
      await backends.stop();
    }
  });
});

describe('transparent retry (gRFC A6)', () => {
  it('replays a call that an upstream refused unprocessed (REFUSED_STREAM) on another endpoint', async () => {
    let refused = 0;
    const refusing = await startRawBackend((stream) => {
      refused++;
      stream.close(7); // REFUSED_STREAM: "not processed, safe to retry"
    });
    const healthy = await startServer({ backend: 'healthy' });
    const proxy = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery([refusing.address, healthy.address]),
      balancer: 'round-robin',
      outlier: { consecutiveFailures: 1_000 },
    });
    const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
    try {
      const results = await runCalls(20, 2, () => client.unary({ payload: 'p'.repeat(1000) }));
      expect(results.every((r) => r.backend === 'healthy' && r.payload.length === 1000)).toBe(true);
      expect(refused).toBeGreaterThan(5);
    } finally {
      close();
      await proxy.close(500);
      await refusing.close();
      await healthy.stop();
    }
  });
});

describe('reconnecting', () => {
  it('backs off exponentially while an endpoint is down, and uses it again once it is back', async () => {
    const backend = await startBackendProcess('phoenix');
    const port = Number(backend.address.split(':')[1]);
    const { logger, lines } = captureLogs();
    const proxy = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery([backend.address]),
      logger,
    });
    const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
    let reborn: Awaited<ReturnType<typeof startBackendProcess>> | undefined;
    try {
      expect((await client.unary({})).backend).toBe('phoenix');
      backend.child.kill('SIGKILL');
      await sleep(1_500);
      const delays = lines
        .filter((l) => l.msg === 'reconnecting after backoff')
        .map((l) => l.delayMs as number);
      // 100 ms doubling (±20 %): a handful of attempts in 1.5 s, not a tight loop.
      expect(delays.length).toBeGreaterThanOrEqual(2);
      expect(delays.length).toBeLessThanOrEqual(6);
      expect(delays[delays.length - 1]!).toBeGreaterThan(delays[0]! * 2);
      reborn = await startBackendProcess('phoenix-2', 0, port);
      await expect
        .poll(
          async () => (await client.unary({}, { signal: AbortSignal.timeout(4_000) })).backend,
          {
            timeout: 8_000,
          },
        )
        .toBe('phoenix-2');
    } finally {
      close();
      await proxy.close(500);
      await backend.stop();
      await reborn?.stop();
    }
  }, 20_000);
});

/** A backend whose calls all fail with UNAVAILABLE: Unary as Trailers-Only, ServerStream in trailers after one message. */
function failingBackend(backend: string): Promise<RunningTestServer> {
  return startServer({
    backend,
    implementation: (name) => ({
      ...createTestServiceImpl({ backend: name }),
      unary: async () => {
        throw new ServerError(Status.UNAVAILABLE, `${name} is broken`);
      },
      serverStream: async function* () {
        yield {
          backend: name,
          payload: 'one',
          sequence: 0,
          receivedCount: 1,
          metadata: {},
          filler: new Uint8Array(),
        };
        throw new ServerError(Status.UNAVAILABLE, `${name} broke mid-stream`);
      },
    }),
  });
}

describe('passive outlier ejection', () => {
  for (const [kind, call] of [
    ['in Trailers-Only response headers', 'unary'],
    ['in trailers after a message', 'serverStream'],
  ] as const) {
    it(`ejects after 7 consecutive failures (status ${kind}) for ~1 s, then probes once`, async () => {
      const healthy = await startServers(2);
      const broken = await failingBackend('broken');
      const { logger, lines } = captureLogs();
      const proxy = await startProxy({
        listen: '127.0.0.1:0',
        discovery: staticDiscovery([...healthy.addresses, broken.address]),
        balancer: 'round-robin',
        logger,
      });
      const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
      const attempt = async () => {
        try {
          if (call === 'unary') await client.unary({});
          else for await (const _ of client.serverStream({ responseCount: 1 })) void _;
          return true;
        } catch {
          return false;
        }
      };
      try {
        const first = await runCalls(60, 1, attempt);
        const ejectedAt = lines.find((l) => l.msg === 'endpoint ejected')?.time as number;
        expect(first.filter((ok) => !ok)).toHaveLength(7);
        // Ejected for 1 s ± 25 %: after 1.3 s exactly one probe goes there, fails, and the
        // endpoint is out again, for longer.
        await sleep(Math.max(0, ejectedAt + 1_300 - Date.now()));
        const second = await runCalls(60, 1, attempt);
        expect(second.filter((ok) => !ok)).toHaveLength(1);
        const ejections = lines.filter((l) => l.msg === 'endpoint ejected');
        expect(ejections).toHaveLength(2);
        expect(ejections[1]!.ejectedMs as number).toBeGreaterThan(
          ejections[0]!.ejectedMs as number,
        );
      } finally {
        close();
        await proxy.close(500);
        await healthy.stop();
        await broken.stop();
      }
    });
  }

  it('never ejects more than its share of the endpoints (10 %, at least one)', async () => {
    const healthy = await startServer({ backend: 'healthy' });
    const broken = await Promise.all([failingBackend('broken-a'), failingBackend('broken-b')]);
    const { logger, lines } = captureLogs();
    const proxy = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery([healthy.address, ...broken.map((b) => b.address)]),
      balancer: 'round-robin',
      logger,
    });
    const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
    try {
      const results = await runCalls(90, 1, async () => {
        try {
          await client.unary({});
          return true;
        } catch {
          return false;
        }
      });
      const ejected = new Set(
        lines.filter((l) => l.msg === 'endpoint ejected').map((l) => l.endpoint),
      );
      expect(ejected.size).toBe(1);
      // The second broken endpoint stays in rotation: its failures go on.
      expect(results.slice(45).filter((ok) => !ok).length).toBeGreaterThan(10);
    } finally {
      close();
      await proxy.close(500);
      await healthy.stop();
      await Promise.all(broken.map((b) => b.stop()));
    }
  });
});

describe('active health checks (grpc.health.v1 through middleware-health)', () => {
  it('takes an endpoint out while it reports NOT_SERVING, and back when SERVING', async () => {
    const servers = await Promise.all(
      ['backend-0', 'backend-1'].map(async (backend) => {
        const state = HealthState();
        const server = createServer();
        server.add(TestServiceDefinition, createTestServiceImpl({ backend }));
        server.add(HealthDefinition, HealthServiceImpl(state));
        const port = await server.listen('127.0.0.1:0');
        return { address: `127.0.0.1:${port}`, state, server };
      }),
    );
    const proxy = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery(servers.map((s) => s.address)),
      balancer: 'round-robin',
      healthCheck: { intervalMs: 200, timeoutMs: 200 },
    });
    const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
    const served = async () =>
      new Set((await runCalls(20, 2, () => client.unary({}))).map((r) => r.backend));
    try {
      expect(await served()).toEqual(new Set(['backend-0', 'backend-1']));
      servers[0]!.state.setStatus('unhealthy');
      // Watch pushes the change: no need to wait for the next Check.
      await expect.poll(served, { timeout: 2_000 }).toEqual(new Set(['backend-1']));
      servers[0]!.state.setStatus('healthy');
      await expect.poll(served, { timeout: 2_000 }).toEqual(new Set(['backend-0', 'backend-1']));
    } finally {
      close();
      await proxy.close(500);
      await Promise.all(servers.map((s) => s.server.shutdown()));
    }
  });
});
