import http2 from 'node:http2';
import { createTestClient, startServer } from '@switchyard/testing';
import { createClient } from 'nice-grpc';
import { ClientError, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import {
  gracefulShutdown,
  HealthDefinition,
  HealthState,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from '../src/index.js';
import { type BackendProcess, startBackendProcess } from './support/backend-process.js';

async function failure(call: Promise<unknown>): Promise<{ code: Status; ms: number }> {
  const started = performance.now();
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ClientError)) throw new Error(`expected a gRPC failure, got ${error}`);
  return { code: error.code, ms: performance.now() - started };
}

describe('SIGTERM to a real server process', () => {
  let backend: BackendProcess | undefined;
  afterEach(() => backend?.kill());

  it('completes 20 long calls in flight, fails new calls fast after the drain, exits 0 within grace + 1 s', async () => {
    const DRAIN_MS = 600;
    const GRACE_MS = 5000;
    const CALL_MS = 2500;
    backend = await startBackendProcess({ DRAIN_MS: `${DRAIN_MS}`, GRACE_MS: `${GRACE_MS}` });
    const { client, channel, close } = createTestClient(backend.address);
    const health = createClient(HealthDefinition, channel);
    const watched: ServingStatus[] = [];
    const watching = (async () => {
      for await (const { status } of health.watch({ service: '' })) watched.push(status);
    })();

    const calls = Array.from({ length: 20 }, (_, i) =>
      client.unary({ payload: `call-${i}`, delayMs: CALL_MS }),
    );
    await backend.event((e) => e.started === 20);
    const sigterm = performance.now();
    backend.child.kill('SIGTERM');
    await backend.event((e) => e.phase === 'draining');
    backend.child.kill('SIGTERM'); // a second signal changes nothing

    // Draining: balancers are told NOT_SERVING, but calls that still arrive are served.
    expect(await health.check({ service: '' })).toEqual({ status: ServingStatus.NOT_SERVING });
    expect(await client.unary({ payload: 'during drain' })).toMatchObject({
      backend: 'child',
      payload: 'during drain',
    });

    // After the drain: GOAWAY sent and the listener closed, so new calls fail fast with
    // UNAVAILABLE, on the connection that got the GOAWAY as on a new one.
    await backend.event((e) => e.phase === 'closing');
    const fresh = createTestClient(backend.address);
    const lateMs: number[] = [];
    for (const late of [client, fresh.client]) {
      const { code, ms } = await failure(late.unary({ payload: 'late' }));
      expect(code).toBe(Status.UNAVAILABLE);
      expect(ms).toBeLessThan(500);
      lateMs.push(Math.round(ms));
    }
    fresh.close();

    const responses = await Promise.all(calls);
    expect(responses.map((r) => r.payload)).toEqual(calls.map((_, i) => `call-${i}`));

    const exit = await backend.exited;
    expect([exit.code, exit.signal]).toEqual([0, null]);
    expect(exit.at - sigterm).toBeLessThan(GRACE_MS + 1000);
    console.info(
      `[sigterm] late calls failed in ${lateMs.join(' / ')} ms (GOAWAY'd / new connection); exit 0 after ${Math.round(exit.at - sigterm)} ms (calls ${CALL_MS} ms, drain ${DRAIN_MS} ms, grace ${GRACE_MS} ms)`,
    );
    // Everything finished in time: nothing was forced.
    expect(backend.events.flatMap((e) => (e.phase ? [e.phase] : []))).toEqual([
      'draining',
      'closing',
      'closed',
    ]);
    // The Watch stream saw the drain and then ended cleanly (OK) rather than being cut.
    await expect(watching).resolves.toBeUndefined();
    expect(watched).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    close();
  });

  it('cancels calls still running when the grace period ends, and exits 0 within grace + 1 s', async () => {
    const GRACE_MS = 1500;
    backend = await startBackendProcess({ DRAIN_MS: '200', GRACE_MS: `${GRACE_MS}` });
    const { client, close } = createTestClient(backend.address);
    const calls = Array.from({ length: 5 }, () => failure(client.unary({ delayMs: 60_000 })));
    await backend.event((e) => e.started === 5);
    const sigterm = performance.now();
    backend.child.kill('SIGTERM');

    for (const { code } of await Promise.all(calls)) expect(code).toBe(Status.CANCELLED);
    const exit = await backend.exited;
    expect([exit.code, exit.signal]).toEqual([0, null]);
    expect(exit.at - sigterm).toBeLessThan(GRACE_MS + 1000);
    console.info(
      `[sigterm, forced] exit 0 after ${Math.round(exit.at - sigterm)} ms (grace ${GRACE_MS} ms)`,
    );
    expect(backend.events.flatMap((e) => (e.phase ? [e.phase] : []))).toEqual([
      'draining',
      'closing',
      'forcing',
      'closed',
    ]);
    close();
  });
});

describe('gracefulShutdown', () => {
  it('runs once however often it is triggered, then removes its signal handlers', async () => {
    const { server, address } = await startServer();
    const health = HealthState();
    const before = process.listenerCount('SIGUSR2');
    const phases: string[] = [];
    const shutdown = gracefulShutdown({
      server,
      health,
      drainMs: 50,
      graceMs: 1000,
      signals: ['SIGUSR2'],
      exitProcess: false,
      onPhase: (phase) => phases.push(phase),
    });
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);

    process.kill(process.pid, 'SIGUSR2');
    await expect.poll(() => shutdown.phase).toBe('draining');
    const first = shutdown.shutdown('again');
    expect(shutdown.shutdown()).toBe(first);
    const result = await first;

    expect(result).toMatchObject({ trigger: 'SIGUSR2', forced: false });
    expect(phases).toEqual(['draining', 'closing', 'closed']);
    expect(health.phase).toBe('stopped');
    expect(process.listenerCount('SIGUSR2')).toBe(before);
    const { client, close } = createTestClient(address);
    expect((await failure(client.unary({}))).code).toBe(Status.UNAVAILABLE);
    close();
  });

  it('sends HTTP/2 GOAWAY (NO_ERROR) once the drain period is over, not before', async () => {
    const { server, address } = await startServer();
    const session = http2.connect(`http://${address}`);
    await new Promise((resolve) => session.once('connect', resolve));
    const goaway = new Promise<{ code: number; at: number }>((resolve) =>
      session.once('goaway', (code) => resolve({ code, at: performance.now() })),
    );
    const started = performance.now();
    const shutdown = gracefulShutdown({
      server,
      drainMs: 300,
      graceMs: 2000,
      signals: [],
      exitProcess: false,
    }).shutdown();

    const { code, at } = await goaway;
    expect(code).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(at - started).toBeGreaterThanOrEqual(300 - 1);
    session.destroy();
    expect(await shutdown).toMatchObject({ forced: false });
  });

  it('names the offending options when drainMs exceeds graceMs', async () => {
    const { server, stop } = await startServer();
    expect(() =>
      gracefulShutdown({ server, drainMs: 5000, graceMs: 1000 }),
    ).toThrowErrorMatchingInlineSnapshot(
      `[RangeError: gracefulShutdown needs 0 <= drainMs <= graceMs, got drainMs=5000 graceMs=1000]`,
    );
    await stop();
  });
});
