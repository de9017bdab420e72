import { delay } from 'abort-controller-x';
import { createServer, type Server } from 'nice-grpc';
import { ServerError, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import {
  HealthDefinition,
  HealthServiceImpl,
  type HealthServiceImplementation,
  HealthState,
  type HealthWatch,
  HealthCheckResponse_ServingStatus as ServingStatus,
  watchHealth,
} from '../src/index.js';
import { type RunningHealthServer, startHealthServer } from './support/health-server.js';
import { recordTransitions } from './support/transitions.js';

// What a server that predates Watch and List serves: grpc-js answers the other methods with
// UNIMPLEMENTED itself.
const CheckOnlyDefinition = {
  name: 'Health',
  fullName: 'grpc.health.v1.Health',
  methods: { check: HealthDefinition.methods.check },
} as const;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

async function start(...args: Parameters<typeof startHealthServer>): Promise<RunningHealthServer> {
  const running = await startHealthServer(...args);
  cleanups.push(() => running.close());
  return running;
}

async function startCheckOnly(
  check: HealthServiceImplementation['check'],
): Promise<{ server: Server; address: string }> {
  const server = createServer();
  server.add(CheckOnlyDefinition, { check });
  const port = await server.listen('127.0.0.1:0');
  cleanups.push(() => server.forceShutdown());
  return { server, address: `127.0.0.1:${port}` };
}

function watched(options: Parameters<typeof watchHealth>[0]): HealthWatch {
  const watch = watchHealth(options);
  cleanups.push(() => watch.close());
  return watch;
}

/** Counts the Watch streams `running` has open, through its HealthState. */
function countWatchers(running: RunningHealthServer): () => number {
  let open = 0;
  const subscribe = running.health.subscribe;
  running.health.subscribe = (listener) => {
    open++;
    const unsubscribe = subscribe(listener);
    return () => {
      open--;
      return unsubscribe();
    };
  };
  return () => open;
}

describe('watchHealth with Watch', () => {
  it('reports each status the stream pushes as a transition with reason and latency', async () => {
    const { address, health } = await start();
    const recorder = recordTransitions();
    const watch = watched({ address, intervalMs: 60_000, onChange: recorder.onChange });

    const first = await recorder.until('SERVING');
    expect(first).toMatchObject({
      from: 'UNKNOWN',
      to: 'SERVING',
      reason: 'Watch reported SERVING',
      source: 'watch',
    });
    expect(first.latencyMs).toBeGreaterThanOrEqual(0);
    expect([watch.status, watch.healthy, watch.mode]).toEqual(['SERVING', true, 'watch']);

    health.setStatus('unhealthy');
    expect(await recorder.until('NOT_SERVING')).toMatchObject({
      from: 'SERVING',
      reason: 'Watch reported NOT_SERVING',
      latencyMs: undefined,
      source: 'watch',
    });
    expect([watch.status, watch.healthy]).toEqual(['NOT_SERVING', false]);
    expect(watch.lastTransition?.to).toBe('NOT_SERVING');
  });

  it('reports every one of 100 rapid transitions, in order', async () => {
    const { address, health } = await start();
    const recorder = recordTransitions();
    watched({ address, intervalMs: 60_000, onChange: recorder.onChange });
    await recorder.until('SERVING');

    for (let i = 0; i < 100; i++) health.setStatus(i % 2 === 0 ? 'unhealthy' : 'healthy');
    await expect.poll(() => recorder.transitions.length).toBe(101);
    expect(recorder.transitions.slice(1).map((t) => t.to)).toEqual(
      Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 'NOT_SERVING' : 'SERVING')),
    );
  });

  it('reports SERVICE_UNKNOWN for a service the target does not know', async () => {
    const { address } = await start();
    const recorder = recordTransitions();
    watched({ address, service: 'no.Such', intervalMs: 60_000, onChange: recorder.onChange });
    expect(await recorder.until('SERVICE_UNKNOWN')).toMatchObject({ source: 'watch' });
  });

  it('sees the target go and come back, and reopens its Watch stream', async () => {
    const first = await start();
    const recorder = recordTransitions();
    const watch = watched({
      address: first.address,
      intervalMs: 300,
      backoff: { baseMs: 50, maxMs: 200, random: () => 0.5 },
      onChange: recorder.onChange,
    });
    await recorder.until('SERVING');

    first.server.forceShutdown();
    const down = await recorder.until('NOT_SERVING');
    expect(down.reason).toMatch(/^Check failed: UNAVAILABLE: /);

    const second = await start({ port: first.port });
    const watchers = countWatchers(second);
    await recorder.until('SERVING', recorder.transitions.indexOf(down));
    await expect.poll(watchers, { timeout: 5000 }).toBe(1);
    second.health.setStatus('unhealthy');
    const pushed = await recorder.until('NOT_SERVING', recorder.transitions.length - 1);
    expect(pushed).toMatchObject({ source: 'watch', reason: 'Watch reported NOT_SERVING' });
    expect(watch.mode).toBe('watch');
  });

  it('reopens a failing Watch with exponential backoff, taking statuses from Check meanwhile', async () => {
    const attempts: number[] = [];
    const health = HealthState();
    const server = createServer();
    server.add(HealthDefinition, {
      ...HealthServiceImpl(health),
      // biome-ignore lint/correctness/useYield: a Watch that always fails
      async *watch() {
        attempts.push(performance.now());
        throw new ServerError(Status.UNAVAILABLE, 'overloaded');
      },
    });
    const port = await server.listen('127.0.0.1:0');
    cleanups.push(() => server.forceShutdown());
    const recorder = recordTransitions();
    watched({
      address: `127.0.0.1:${port}`,
      intervalMs: 60_000,
      backoff: { baseMs: 100, multiplier: 2, maxMs: 400, jitter: 0.2, random: () => 0.5 },
      onChange: recorder.onChange,
    });

    await expect.poll(() => attempts.length, { timeout: 5000 }).toBe(6);
    const gaps = attempts.slice(1).map((at, i) => at - (attempts[i] as number));
    const expected = [100, 200, 400, 400, 400];
    gaps.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual((expected[i] as number) - 5);
      expect(gap).toBeLessThan((expected[i] as number) + 250);
    });
    // A failed stream alone marks nothing down: Check said SERVING, once.
    expect(recorder.transitions.map((t) => [t.to, t.source])).toEqual([['SERVING', 'check']]);
  });
});

describe('watchHealth with Check', () => {
  it('falls back to polling Check at once when Watch is UNIMPLEMENTED', async () => {
    let status = ServingStatus.SERVING;
    const { address } = await startCheckOnly(async () => ({ status }));
    const recorder = recordTransitions();
    const started = performance.now();
    const watch = watched({ address, intervalMs: 1000, onChange: recorder.onChange });

    const first = await recorder.until('SERVING');
    expect(first).toMatchObject({ reason: 'Check answered SERVING', source: 'check' });
    expect(first.seenAt - started).toBeLessThan(1000);
    expect(first.latencyMs).toBeGreaterThanOrEqual(0);
    expect(watch.mode).toBe('check');

    status = ServingStatus.NOT_SERVING;
    const changed = performance.now();
    const down = await recorder.until('NOT_SERVING');
    expect(down.seenAt - changed).toBeLessThan(1000 + 200);
  });

  it('declares a target NOT_SERVING when its Check does not answer within the timeout', async () => {
    const { address } = await startCheckOnly(async (_request, context) => {
      await delay(context.signal, 10_000);
      return { status: ServingStatus.SERVING };
    });
    const recorder = recordTransitions();
    watched({
      address,
      watch: false,
      timeoutMs: 200,
      intervalMs: 1000,
      onChange: recorder.onChange,
    });

    const down = await recorder.until('NOT_SERVING');
    expect(down).toMatchObject({ reason: 'Check timed out after 200 ms', source: 'check' });
    expect(down.latencyMs).toBeGreaterThanOrEqual(199);
    expect(down.latencyMs).toBeLessThan(200 + 250);
  });

  it('reports SERVICE_UNKNOWN when Check answers NOT_FOUND', async () => {
    const { address } = await start();
    const recorder = recordTransitions();
    watched({ address, service: 'no.Such', watch: false, onChange: recorder.onChange });
    expect(await recorder.until('SERVICE_UNKNOWN')).toMatchObject({
      reason: 'Check: unknown service "no.Such"',
      source: 'check',
    });
  });

  it('stops probing on close() or when its signal aborts', async () => {
    let checks = 0;
    const { address } = await startCheckOnly(async () => {
      checks++;
      return { status: ServingStatus.SERVING };
    });
    const byClose = watchHealth({ address, watch: false, intervalMs: 30 });
    const abort = new AbortController();
    watchHealth({ address, watch: false, intervalMs: 30, signal: abort.signal });
    await expect.poll(() => checks).toBeGreaterThanOrEqual(6);

    byClose.close();
    byClose.close();
    abort.abort();
    await delay(new AbortController().signal, 50);
    const after = checks;
    await delay(new AbortController().signal, 300);
    expect(checks).toBe(after);
  });
});

describe('watchHealth options', () => {
  it('names what is wrong with them', () => {
    expect(() => watchHealth({})).toThrowErrorMatchingInlineSnapshot(
      `[TypeError: watchHealth needs exactly one of \`address\` or \`channel\`]`,
    );
    expect(() =>
      watchHealth({ address: '127.0.0.1:1', intervalMs: 0 }),
    ).toThrowErrorMatchingInlineSnapshot(
      `[RangeError: watchHealth: intervalMs must be a positive number of ms, got 0]`,
    );
  });
});
