import {
  type RetryAttemptEvent,
  type RetryBudgetExhaustedEvent,
  retryAttemptChannel,
  retryBudgetExhaustedChannel,
} from '@switchyard/core';
import {
  CleanupSteps,
  type RunningTestServer,
  startServer,
  TestServiceDefinition,
} from '@switchyard/testing';
import { AbortError } from 'abort-controller-x';
import { createChannel, createClientFactory } from 'nice-grpc';
import { ClientError, Metadata, ServerError, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, test } from 'vitest';
import { createRetryBudget, type RetryEvent, retryMiddleware } from '../src/index.js';
import { failFirst, servedAttempts, startRawGrpcServer, switchyardRetry } from './support.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

async function flakyServer(decide?: Parameters<typeof servedAttempts>[0]) {
  const recorder = servedAttempts(decide);
  const server = await startServer({ middleware: [recorder.middleware] });
  cleanup.defer(() => server.forceStop());
  return { server, attempts: recorder.attempts };
}

function clientFor(server: Pick<RunningTestServer, 'address'>, middleware = retryMiddleware) {
  const channel = createChannel(server.address);
  cleanup.defer(() => channel.close());
  return createClientFactory().use(middleware).create(TestServiceDefinition, channel);
}

/** TestService with `Unary` declared `idempotency_level = IDEMPOTENT`, as ts-proto emits it. */
const IdempotentTestService = {
  ...TestServiceDefinition,
  methods: {
    ...TestServiceDefinition.methods,
    unary: { ...TestServiceDefinition.methods.unary, options: { idempotencyLevel: 'IDEMPOTENT' } },
  },
} as const;

async function failure(promise: Promise<unknown>): Promise<ClientError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ClientError)) throw new Error(`expected a ClientError, got ${error}`);
  return error;
}

describe('flaky server', () => {
  test('fails the first k attempts with UNAVAILABLE: the call succeeds with exactly k + 1 attempts', async () => {
    for (const k of [1, 3]) {
      const { server, attempts } = await flakyServer(failFirst(k));
      const client = clientFor(server);
      const response = await client.unary(
        { payload: `k=${k}` },
        { retry: true, retryMaxAttempts: 5, retryBaseDelayMs: 5 },
      );
      expect(response.payload).toBe(`k=${k}`);
      expect(attempts).toHaveLength(k + 1);
      // gRFC A6: each retry says how many attempts came before it.
      expect(attempts.map((a) => a.previousAttempts)).toEqual([
        undefined,
        ...Array.from({ length: k }, (_, i) => String(i + 1)),
      ]);
    }
  });

  test('a method declared IDEMPOTENT in the proto is retried without `retry: true`', async () => {
    const { server, attempts } = await flakyServer(failFirst(2));
    const channel = createChannel(server.address);
    cleanup.defer(() => channel.close());
    const client = createClientFactory()
      .use(retryMiddleware)
      .create(IdempotentTestService, channel);
    await client.unary({ payload: 'x' }, { retryMaxAttempts: 2, retryBaseDelayMs: 5 });
    expect(attempts).toHaveLength(3);
  });

  test('a non-idempotent method failing with UNAVAILABLE from its server is not retried', async () => {
    const { server, attempts } = await flakyServer(failFirst(1));
    const client = clientFor(server);
    const error = await failure(client.unary({}, { retryMaxAttempts: 5, retryBaseDelayMs: 5 }));
    expect([error.code, error.details]).toEqual([
      Status.UNAVAILABLE,
      'attempt 1 failed on purpose',
    ]);
    expect(attempts).toHaveLength(1);
  });

  test('a non-idempotent method whose connection drops mid-call is not retried: the server may have acted', async () => {
    const raw = await startRawGrpcServer(() => 'drop');
    cleanup.defer(() => raw.close());
    const channel = createChannel(raw.address, undefined, { 'grpc.enable_retries': 0 });
    cleanup.defer(() => channel.close());
    const client = createClientFactory()
      .use(retryMiddleware)
      .create(TestServiceDefinition, channel);
    const error = await failure(client.unary({}, { retryMaxAttempts: 5, retryBaseDelayMs: 5 }));
    expect([error.code, error.details]).toEqual([Status.UNAVAILABLE, 'Connection dropped']);
    expect(raw.streams()).toBe(1);

    // The same ambiguous failure on an idempotent method is retried.
    const idempotent = createClientFactory()
      .use(retryMiddleware)
      .create(IdempotentTestService, channel);
    await failure(idempotent.unary({}, { retryMaxAttempts: 2, retryBaseDelayMs: 5 }));
    expect(raw.streams()).toBe(4);
  });

  test('stops after retryMaxAttempts retries and throws the last error unchanged', async () => {
    const { server, attempts } = await flakyServer(failFirst(100));
    const client = clientFor(server);
    const error = await failure(
      client.unary({}, { retry: true, retryMaxAttempts: 3, retryBaseDelayMs: 1 }),
    );
    expect(error.details).toBe('attempt 4 failed on purpose');
    expect(attempts).toHaveLength(4);
  });

  test('codes outside retryableStatuses are not retried', async () => {
    const { server, attempts } = await flakyServer(failFirst(1, Status.INVALID_ARGUMENT));
    const client = clientFor(server);
    const error = await failure(client.unary({}, { retry: true, retryMaxAttempts: 3 }));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(attempts).toHaveLength(1);

    const { server: second, attempts: secondAttempts } = await flakyServer(failFirst(1));
    const narrow = clientFor(second);
    await failure(
      narrow.unary({}, { retry: true, retryMaxAttempts: 3, retryableStatuses: [Status.INTERNAL] }),
    );
    expect(secondAttempts).toHaveLength(1);
  });
});

describe('grpc-status and pushback', () => {
  function pushbackServer(pushback: string, { headersFirst }: { headersFirst: boolean }) {
    return flakyServer((n, context) => {
      if (n > 1) return;
      if (headersFirst) context.sendHeader();
      context.trailer.set('grpc-retry-pushback-ms', pushback);
      throw new ServerError(Status.UNAVAILABLE, 'pushed back');
    });
  }

  for (const headersFirst of [false, true]) {
    const shape = headersFirst ? 'headers, then trailers' : 'a Trailers-Only response';
    test(`200 ms pushback in ${shape}: the next attempt starts ≥ 200 ms later`, async () => {
      const { server, attempts } = await pushbackServer('200', { headersFirst });
      const client = clientFor(server, switchyardRetry({ random: () => 0 }));
      const delays: number[] = [];
      await client.unary(
        {},
        {
          retry: true,
          retryMaxAttempts: 3,
          retryBaseDelayMs: 1,
          onRetry: (event) => delays.push(event.delayMs),
        },
      );
      expect(attempts).toHaveLength(2);
      expect(delays).toEqual([200]);
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(200);
    });

    test(`-1 pushback in ${shape}: no retry`, async () => {
      const { server, attempts } = await pushbackServer('-1', { headersFirst });
      const client = clientFor(server, switchyardRetry());
      const error = await failure(client.unary({}, { retry: true, retryMaxAttempts: 3 }));
      expect(error.details).toBe('pushed back');
      expect(attempts).toHaveLength(1);
    });
  }

  test('a malformed pushback stops retries, as gRFC A6 says', async () => {
    const { server, attempts } = await pushbackServer('soon', { headersFirst: false });
    const client = clientFor(server, switchyardRetry());
    await failure(client.unary({}, { retry: true, retryMaxAttempts: 3 }));
    expect(attempts).toHaveLength(1);
  });
});

describe('backoff', () => {
  test('full jitter: the n-th retry waits random × min(max, base × 2^(n-1)), pinned by the random source', async () => {
    const { server } = await flakyServer(failFirst(4));
    const client = clientFor(server, switchyardRetry({ random: () => 0.5 }));
    const reported: [number, number][] = [];
    await client.unary(
      {},
      {
        retry: true,
        retryMaxAttempts: 4,
        retryBaseDelayMs: 10,
        retryMaxDelayMs: 50,
        onRetryableError: (_error, attempt, delayMs) => reported.push([attempt, delayMs]),
      },
    );
    expect(reported).toEqual([
      [0, 5],
      [1, 10],
      [2, 20],
      [3, 25],
    ]);
  });

  test('aborting the call during a backoff ends it at once, without another attempt', async () => {
    const { server, attempts } = await flakyServer(failFirst(1));
    const client = clientFor(server, switchyardRetry({ random: () => 1 }));
    const controller = new AbortController();
    const call = client.unary(
      {},
      {
        retry: true,
        retryBaseDelayMs: 10_000,
        signal: controller.signal,
        onRetry: () => setTimeout(() => controller.abort(), 20),
      },
    );
    const started = Date.now();
    await expect(call).rejects.toBeInstanceOf(AbortError);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(attempts).toHaveLength(1);
  });
});

describe('attempts are visible', () => {
  test('onRetry, onRetryableError and the diagnostics channel see each retry with its number, delay and reason', async () => {
    const { server } = await flakyServer(failFirst(2));
    const client = clientFor(server, switchyardRetry({ random: () => 0 }));
    const published: RetryAttemptEvent[] = [];
    const listener = (event: unknown) => published.push(event as RetryAttemptEvent);
    retryAttemptChannel.subscribe(listener);
    cleanup.defer(() => retryAttemptChannel.unsubscribe(listener));
    const hooked: RetryEvent[] = [];
    const legacy: number[] = [];
    await client.unary(
      {},
      {
        retry: true,
        retryMaxAttempts: 2,
        onRetry: (event) => hooked.push(event),
        onRetryableError: (_error, attempt) => legacy.push(attempt),
      },
    );
    const expected = [2, 3].map((attempt) => ({
      method: '/switchyard.testing.v1.TestService/Unary',
      attempt,
      delayMs: 0,
      kind: 'retry',
      code: Status.UNAVAILABLE,
    }));
    expect(hooked).toMatchObject(expected);
    expect(hooked[0]!.error?.details).toBe('attempt 1 failed on purpose');
    expect(published).toMatchObject(expected);
    expect(legacy).toEqual([0, 1]);
  });

  test('the caller’s onHeader and onTrailer see every attempt, as with nice-grpc’s retry middleware', async () => {
    const { server } = await flakyServer((n, context) => {
      context.trailer.set('attempt', String(n));
      failFirst(1)(n);
    });
    const client = clientFor(server);
    const trailers: string[] = [];
    await client.unary(
      {},
      {
        retry: true,
        retryBaseDelayMs: 1,
        onTrailer: (trailer) => trailers.push(trailer.get('attempt') ?? '?'),
      },
    );
    expect(trailers).toEqual(['1', '2']);
  });
});

describe('retry budget', () => {
  test('over budget: fails fast with the original error and publishes the refusal', async () => {
    const { server, attempts } = await flakyServer(failFirst(100));
    const budget = createRetryBudget({ minRetriesPerSecond: 1, ttlMs: 1000, retryRatio: 0 });
    const client = clientFor(server, switchyardRetry({ budget }));
    const refused: RetryBudgetExhaustedEvent[] = [];
    const listener = (event: unknown) => refused.push(event as RetryBudgetExhaustedEvent);
    retryBudgetExhaustedChannel.subscribe(listener);
    cleanup.defer(() => retryBudgetExhaustedChannel.unsubscribe(listener));

    const started = Date.now();
    const error = await failure(
      client.unary({}, { retry: true, retryMaxAttempts: 10, retryBaseDelayMs: 1 }),
    );
    // One retry from the reserve of 1 retry/s × 1 s, then the budget refuses.
    expect(attempts).toHaveLength(2);
    expect(error.details).toBe('attempt 2 failed on purpose');
    expect(refused).toEqual([
      { method: '/switchyard.testing.v1.TestService/Unary', code: Status.UNAVAILABLE },
    ]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('one budget object is shared by clients that pass it as the retryBudget option', async () => {
    const { server, attempts } = await flakyServer(failFirst(100));
    const shared = createRetryBudget({ minRetriesPerSecond: 0.3, ttlMs: 10_000, retryRatio: 0 });
    const a = clientFor(server);
    const b = clientFor(server, switchyardRetry());
    const options = { retry: true, retryMaxAttempts: 10, retryBaseDelayMs: 1, retryBudget: shared };
    await failure(a.unary({}, options));
    await failure(b.unary({}, options));
    // 0.3/s × 10 s = 3 retries in all, taken by the first client's call (1 + 3 attempts).
    expect(attempts).toHaveLength(4 + 1);
  });
});

describe('cancellation of the caller', () => {
  test('an abort during an attempt is not retried', async () => {
    const { server, attempts } = await flakyServer();
    const client = clientFor(server);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(
      client.unary({ delayMs: 5000 }, { retry: true, signal: controller.signal }),
    ).rejects.toBeInstanceOf(AbortError);
    expect(attempts).toHaveLength(1);
  });
});

describe('request metadata', () => {
  test('the caller’s metadata goes to every attempt, untouched by grpc-previous-rpc-attempts', async () => {
    const { server } = await flakyServer(failFirst(1));
    const client = clientFor(server);
    const metadata = Metadata({ 'x-tenant': 'blue' });
    const response = await client.unary(
      { echoMetadata: ['x-tenant', 'grpc-previous-rpc-attempts'] },
      { retry: true, retryBaseDelayMs: 1, metadata },
    );
    expect(response.metadata).toEqual({ 'x-tenant': 'blue', 'grpc-previous-rpc-attempts': '1' });
    expect(metadata.has('grpc-previous-rpc-attempts')).toBe(false);
  });
});
