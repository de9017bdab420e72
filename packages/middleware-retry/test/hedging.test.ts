import { type RetryAttemptEvent, retryAttemptChannel } from '@switchyard/core';
import {
  CleanupSteps,
  createTestServiceImpl,
  startServers,
  TestServiceDefinition,
} from '@switchyard/testing';
import { delay } from 'abort-controller-x';
import { createChannel, createClientFactory } from 'nice-grpc';
import { type CallContext, ClientError, ServerError, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, test } from 'vitest';
import { createRetryBudget, createRetryMiddleware, type RetryEvent } from '../src/index.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

/** What a server saw of one call. */
interface ServedCall {
  readonly backend: string;
  readonly previousAttempts: string | undefined;
  cancelled: boolean;
  completed: boolean;
}

/**
 * Servers whose Unary and ServerStream handlers first run `before(n, backend, context)` (n: the
 * 1-based call number across all servers), then answer normally; every call is recorded,
 * including whether its signal aborted before it completed.
 */
async function hedgeServers(
  count: number,
  before: (n: number, backend: string, context: CallContext) => Promise<void>,
) {
  const calls: ServedCall[] = [];
  const served = async (backend: string, context: CallContext) => {
    const call: ServedCall = {
      backend,
      previousAttempts: context.metadata.get('grpc-previous-rpc-attempts'),
      cancelled: false,
      completed: false,
    };
    calls.push(call);
    context.signal.addEventListener('abort', () => {
      if (!call.completed) call.cancelled = true;
    });
    await before(calls.length, backend, context);
    call.completed = true;
  };
  const servers = await startServers(count, {
    implementation: (backend) => {
      const standard = createTestServiceImpl({ backend });
      return {
        ...standard,
        async unary(request, context) {
          await served(backend, context);
          return standard.unary(request, context);
        },
        async *serverStream(request, context) {
          await served(backend, context);
          return yield* standard.serverStream(request, context);
        },
      };
    },
  });
  cleanup.defer(() => servers.forceStop());
  return { servers, calls };
}

/** A client balancing round-robin over `addresses`, with hedging set up for Unary and ServerStream. */
function hedgingClient(
  addresses: readonly string[],
  defaults: { hedgingMaxAttempts: number; hedgingDelayMs: number },
  middleware = createRetryMiddleware(),
) {
  const target = `ipv4:${addresses.join(',')}`;
  const channel = createChannel(target, undefined, {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
  });
  cleanup.defer(() => channel.close());
  return createClientFactory()
    .use(middleware)
    .create(TestServiceDefinition, channel, { unary: defaults, serverStream: defaults });
}

/** Calls until round-robin has reached every backend, then lets the calls settle. */
async function warmUp(
  client: ReturnType<typeof hedgingClient>,
  calls: readonly ServedCall[],
  backends: number,
): Promise<void> {
  for (let i = 0; i < 100 && new Set(calls.map((c) => c.backend)).size < backends; i++) {
    await client.unary({});
  }
  await eventually(() => calls.every((c) => c.completed || c.cancelled));
}

async function eventually(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('hedging', () => {
  test('3 backends, one answering after 500 ms: p99 over 200 hedged calls < 150 ms, and every losing call is cancelled on its server', async () => {
    const { servers, calls } = await hedgeServers(3, async (_n, backend, context) => {
      if (backend === 'backend-2') await delay(context.signal, 500);
    });
    const client = hedgingClient(servers.addresses, { hedgingMaxAttempts: 3, hedgingDelayMs: 50 });

    await warmUp(client, calls, 3);

    // Without hedging, the slow backend shows: one call in three takes 500 ms.
    const unhedged: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await client.unary({}, { hedgingMaxAttempts: 1 });
      unhedged.push(performance.now() - started);
    }
    expect(Math.max(...unhedged)).toBeGreaterThanOrEqual(490);

    const measuredFrom = calls.length;
    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      const response = await client.unary({ payload: String(i) });
      latencies.push(performance.now() - started);
      expect(response.backend).not.toBe('backend-2');
    }
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.ceil(0.99 * latencies.length) - 1]!;
    expect(p99).toBeLessThan(150);

    const measured = calls.slice(measuredFrom);
    const slow = measured.filter((c) => c.backend === 'backend-2');
    expect(slow.length).toBeGreaterThanOrEqual(50);
    // Each slow attempt lost to a hedge; the server saw every one of them cancelled.
    await eventually(() => slow.every((c) => c.cancelled));
    expect(slow.filter((c) => c.completed)).toEqual([]);
    // Hedges say which attempt they are (a third starts when the second is slow on a busy machine).
    const previous = new Set(measured.map((c) => c.previousAttempts));
    expect(previous).toContain('1');
    expect([...previous].every((p) => [undefined, '1', '2'].includes(p))).toBe(true);
  });

  test('a non-fatal failure starts the next attempt at once instead of after the hedging delay', async () => {
    const { servers, calls } = await hedgeServers(1, async (n) => {
      if (n === 1) throw new ServerError(Status.UNAVAILABLE, 'first fails');
    });
    const events: RetryEvent[] = [];
    const client = hedgingClient(servers.addresses, {
      hedgingMaxAttempts: 3,
      hedgingDelayMs: 5000,
    });
    const started = performance.now();
    await client.unary({}, { onRetry: (event) => events.push(event) });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(calls).toHaveLength(2);
    expect(events.map((e) => [e.attempt, e.kind, e.code, e.delayMs])).toEqual([
      [2, 'hedge', Status.UNAVAILABLE, 0],
    ]);
  });

  test('a fatal status ends the call with it and cancels the other attempts', async () => {
    const { servers, calls } = await hedgeServers(1, async (n, _backend, context) => {
      if (n === 1) {
        await delay(context.signal, 100);
        throw new ServerError(Status.INVALID_ARGUMENT, 'bad request');
      }
      await delay(context.signal, 2000);
    });
    const client = hedgingClient(servers.addresses, { hedgingMaxAttempts: 3, hedgingDelayMs: 20 });
    const started = performance.now();
    const error = await client.unary({}).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).code).toBe(Status.INVALID_ARGUMENT);
    // Attempts 2 and 3 started on the 20 ms timer and were cancelled.
    expect(calls).toHaveLength(3);
    await eventually(() => calls.slice(1).every((c) => c.cancelled));
  });

  test('all attempts failing non-fatally: the last error, after at most hedgingMaxAttempts', async () => {
    const { servers, calls } = await hedgeServers(1, async (n) => {
      throw new ServerError(Status.UNAVAILABLE, `attempt ${n} fails`);
    });
    const client = hedgingClient(servers.addresses, { hedgingMaxAttempts: 3, hedgingDelayMs: 10 });
    const error = await client.unary({}).catch((e: unknown) => e);
    expect((error as ClientError).details).toBe('attempt 3 fails');
    expect(calls).toHaveLength(3);
  });

  test('server streaming: the first attempt to send a message wins; the other is cancelled', async () => {
    const { servers, calls } = await hedgeServers(2, async (_n, backend, context) => {
      if (backend === 'backend-0') await delay(context.signal, 1000);
    });
    const client = hedgingClient(servers.addresses, { hedgingMaxAttempts: 2, hedgingDelayMs: 30 });
    await warmUp(client, calls, 2);

    for (let i = 0; i < 4; i++) {
      const backends: string[] = [];
      for await (const response of client.serverStream({ responseCount: 3 })) {
        backends.push(response.backend);
      }
      expect(backends).toEqual(['backend-1', 'backend-1', 'backend-1']);
    }
    await eventually(() =>
      calls.filter((c) => c.backend === 'backend-0' && !c.completed).every((c) => c.cancelled),
    );
  });

  test('the caller’s onHeader and onTrailer see only the winner’s metadata', async () => {
    const { servers } = await hedgeServers(1, async (n, _backend, context) => {
      context.header.set('attempt', String(n));
      context.trailer.set('attempt', String(n));
      if (n === 1) await delay(context.signal, 1000);
    });
    const client = hedgingClient(servers.addresses, { hedgingMaxAttempts: 2, hedgingDelayMs: 20 });
    const seen: string[] = [];
    await client.unary(
      {},
      {
        onHeader: (header) => seen.push(`header ${header.get('attempt')}`),
        onTrailer: (trailer) => seen.push(`trailer ${trailer.get('attempt')}`),
      },
    );
    expect(seen).toEqual(['header 2', 'trailer 2']);
  });

  test('hedges draw on the retry budget: with none left, the call waits for its first attempt', async () => {
    const { servers, calls } = await hedgeServers(1, async (_n, _backend, context) => {
      await delay(context.signal, 200);
    });
    const budget = createRetryBudget({ minRetriesPerSecond: 0, retryRatio: 0 });
    const client = hedgingClient(
      servers.addresses,
      { hedgingMaxAttempts: 3, hedgingDelayMs: 10 },
      createRetryMiddleware({ budget }),
    );
    const published: RetryAttemptEvent[] = [];
    const listener = (event: unknown) => published.push(event as RetryAttemptEvent);
    retryAttemptChannel.subscribe(listener);
    cleanup.defer(() => retryAttemptChannel.unsubscribe(listener));
    await client.unary({});
    expect(calls).toHaveLength(1);
    expect(published).toEqual([]);
  });

  test('caller cancellation cancels every attempt', async () => {
    const { servers, calls } = await hedgeServers(1, async (_n, _backend, context) => {
      await delay(context.signal, 5000);
    });
    const client = hedgingClient(servers.addresses, { hedgingMaxAttempts: 3, hedgingDelayMs: 10 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(client.unary({}, { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(calls).toHaveLength(3);
    await eventually(() => calls.every((c) => c.cancelled));
  });
});
