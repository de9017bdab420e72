import { deadlineMiddleware as switchyardDeadline } from '@switchyard/middleware-deadline';
import { CleanupSteps, TestServiceDefinition } from '@switchyard/testing';
import { type Client, createChannel, createClientFactory } from 'nice-grpc';
import { deadlineMiddleware as niceGrpcDeadline } from 'nice-grpc-client-middleware-deadline';
import {
  type RetryOptions as NiceGrpcRetryOptions,
  retryMiddleware as niceGrpcRetryMiddleware,
} from 'nice-grpc-client-middleware-retry';
import { ClientError, type ClientMiddleware, Status } from 'nice-grpc-common';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { NICE_GRPC_RETRY_DEFAULTS, retryMiddleware } from '../src/index.js';
import { closedPort, failFirst, servedAttempts, serverAndChannel } from './support.js';

// Side by side with the installed nice-grpc-client-middleware-retry (and its deadline
// middleware): with no options but the ones a caller of the original passes, both give the same
// attempts, hook calls (attempt, delay) and errors — every default, not a sample of them.

const cleanup = new CleanupSteps();
// Both read Math.random per backoff; pinned, the delays they report can be compared.
beforeEach(() => {
  vi.spyOn(Math, 'random').mockReturnValue(0.5);
});
afterEach(() => {
  vi.restoreAllMocks();
  return cleanup.run();
});

type Retry = ClientMiddleware<NiceGrpcRetryOptions>;
type Deadline = ClientMiddleware<{ deadline?: Date | number }>;
// The client's call options, spelled out: nice-grpc's `use` does not carry these middleware
// types through here, and a literal option would fail type-checking against plain CallOptions.
type RetryingClient = Client<
  typeof TestServiceDefinition,
  NiceGrpcRetryOptions & { deadline?: Date | number }
>;
/** The package a user had, and the one they switch to by changing the import. */
const pairs: { name: string; retry: Retry; deadline: Deadline }[] = [
  { name: 'nice-grpc', retry: niceGrpcRetryMiddleware, deadline: niceGrpcDeadline },
  { name: 'switchyard', retry: retryMiddleware, deadline: switchyardDeadline },
];

const IdempotentTestService = {
  ...TestServiceDefinition,
  methods: {
    ...TestServiceDefinition.methods,
    unary: { ...TestServiceDefinition.methods.unary, options: { idempotencyLevel: 'IDEMPOTENT' } },
  },
} as const;

function describeError(error: unknown): string {
  if (error instanceof ClientError) return `${Status[error.code]}: ${error.details}`;
  return (error as Error).name;
}

/** What one call did: how it ended, what the server saw, what the hook was told. */
async function unaryCall(
  { retry, deadline }: { retry: Retry; deadline: Deadline },
  options: NiceGrpcRetryOptions & { deadline?: number; signal?: AbortSignal },
  {
    failures = 1,
    code = Status.UNAVAILABLE,
    idempotent = false,
  }: { failures?: number; code?: Status; idempotent?: boolean; deadline?: Deadline } = {},
) {
  const { middleware, attempts } = servedAttempts(failFirst(failures, code));
  const { channel } = await serverAndChannel(cleanup, { middleware: [middleware] });
  // nice-grpc's README order: the retry inside the deadline (the last `use` runs first). Without
  // a `deadline` option both deadline middlewares pass the call through.
  const client = createClientFactory()
    .use(retry)
    .use(deadline)
    .create(idempotent ? IdempotentTestService : TestServiceDefinition, channel) as RetryingClient;
  const hookCalls: [number, Status, number][] = [];
  const outcome = await client
    .unary(
      { payload: 'p' },
      {
        ...options,
        onRetryableError: (error, attempt, delayMs) =>
          hookCalls.push([attempt, error.code, delayMs]),
      },
    )
    .then((response) => `ok ${response.payload}`, describeError);
  return { outcome, attempts: attempts.length, hookCalls };
}

/** Runs `scenario` with each package and expects the same result from both. */
async function sameWithBoth<T>(scenario: (pair: (typeof pairs)[number]) => Promise<T>) {
  const results: T[] = [];
  for (const pair of pairs) results.push(await scenario(pair));
  expect(results[1]).toEqual(results[0]);
  return results[0] as T;
}

describe('defaults equal nice-grpc-client-middleware-retry’s', () => {
  test('the retryable codes, in its order: UNKNOWN, INTERNAL, UNAVAILABLE, CANCELLED', () => {
    // The original does not export its list; the behaviour below checks every code.
    expect(NICE_GRPC_RETRY_DEFAULTS.retryableStatuses).toEqual([
      Status.UNKNOWN,
      Status.INTERNAL,
      Status.UNAVAILABLE,
      Status.CANCELLED,
    ]);
  });

  const codes = Object.values(Status).filter(
    (code): code is Status => typeof code === 'number' && code !== Status.OK,
  );
  test.each(codes.map((code) => [Status[code], code] as const))(
    'a server’s %s with retry: true: retried exactly when the original retries it',
    async (_, code) => {
      const result = await sameWithBoth((pair) =>
        unaryCall(pair, { retry: true, retryBaseDelayMs: 1 }, { code }),
      );
      const retried = [Status.UNKNOWN, Status.INTERNAL, Status.UNAVAILABLE, Status.CANCELLED];
      expect(result.attempts).toBe(retried.includes(code) ? 2 : 1);
    },
  );

  test('no retry option: a method that is not idempotent is not retried', async () => {
    const result = await sameWithBoth((pair) =>
      unaryCall(pair, { retryMaxAttempts: 3, retryBaseDelayMs: 1 }),
    );
    expect(result.attempts).toBe(1);
  });

  test('no retry option: a method declared IDEMPOTENT is retried, once (retryMaxAttempts 1)', async () => {
    const result = await sameWithBoth((pair) =>
      unaryCall(pair, { retryBaseDelayMs: 1 }, { failures: 5, idempotent: true }),
    );
    expect(result.attempts).toBe(2);
  });

  test('retryMaxAttempts and retryableStatuses as given', async () => {
    await sameWithBoth((pair) =>
      unaryCall(pair, { retry: true, retryMaxAttempts: 2, retryBaseDelayMs: 1 }, { failures: 5 }),
    );
    await sameWithBoth((pair) =>
      unaryCall(pair, { retry: true, retryableStatuses: [Status.INTERNAL], retryBaseDelayMs: 1 }),
    );
  });

  test('jitter: the n-th retry waits round(min(max, base × 2^(n-1)) × (1 + random) / 2)', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.25);
    const result = await sameWithBoth((pair) =>
      unaryCall(
        pair,
        { retry: true, retryMaxAttempts: 4, retryBaseDelayMs: 4, retryMaxDelayMs: 12 },
        { failures: 4 },
      ),
    );
    expect(result.hookCalls.map(([attempt, , delayMs]) => [attempt, delayMs])).toEqual([
      [0, Math.round((4 * 1.25) / 2)],
      [1, Math.round((8 * 1.25) / 2)],
      [2, Math.round((12 * 1.25) / 2)],
      [3, Math.round((12 * 1.25) / 2)],
    ]);
  });

  test('streams: a failed server-, client- or bidi-streaming call is never retried', async () => {
    const streamCalls = async (retry: Retry) => {
      const { middleware, attempts } = servedAttempts(failFirst(3));
      const { channel } = await serverAndChannel(cleanup, { middleware: [middleware] });
      const client = createClientFactory()
        .use(retry)
        .create(TestServiceDefinition, channel) as RetryingClient;
      const options = { retry: true, retryMaxAttempts: 3, retryBaseDelayMs: 1 };
      async function* requests() {
        yield { payload: 'a' };
      }
      const outcomes = [
        await (async () => {
          for await (const _ of client.serverStream({ responseCount: 2 }, options));
        })().then(() => 'ok', describeError),
        await client.clientStream(requests(), options).then(() => 'ok', describeError),
        await (async () => {
          for await (const _ of client.bidi(requests(), options));
        })().then(() => 'ok', describeError),
      ];
      return { outcomes, attempts: attempts.length };
    };
    const result = await sameWithBoth(({ retry }) => streamCalls(retry));
    expect(result.attempts).toBe(3);
  });

  test('a refused connection is not retried for a method that did not opt in (no transparent retry)', async () => {
    const refused = async (retry: Retry, options: NiceGrpcRetryOptions) => {
      const channel = createChannel(`127.0.0.1:${await closedPort()}`);
      cleanup.defer(() => channel.close());
      const client = createClientFactory()
        .use(retry)
        .create(TestServiceDefinition, channel) as RetryingClient;
      let retries = 0;
      const outcome = await client
        .unary({}, { ...options, onRetryableError: () => retries++ })
        .then(
          () => 'ok',
          (error: unknown) => (error as ClientError).code,
        );
      return { outcome, retries };
    };
    expect(await sameWithBoth(({ retry }) => refused(retry, {}))).toEqual({
      outcome: Status.UNAVAILABLE,
      retries: 0,
    });
    expect(
      await sameWithBoth(({ retry }) => refused(retry, { retry: true, retryBaseDelayMs: 1 })),
    ).toEqual({ outcome: Status.UNAVAILABLE, retries: 1 });
  });

  test('a server’s grpc-retry-pushback-ms does not change anything (the original ignores it)', async () => {
    const pushedBack = async (retry: Retry) => {
      const { middleware, attempts } = servedAttempts((n, context) => {
        if (n > 1) return;
        context.trailer.set('grpc-retry-pushback-ms', '-1');
        failFirst(1)(n);
      });
      const { channel } = await serverAndChannel(cleanup, { middleware: [middleware] });
      const client = createClientFactory()
        .use(retry)
        .create(TestServiceDefinition, channel) as RetryingClient;
      await client.unary({}, { retry: true, retryBaseDelayMs: 1 });
      return attempts.length;
    };
    expect(await sameWithBoth(({ retry }) => pushedBack(retry))).toBe(2);
  });

  test('no budget: 200 calls failing at once are each retried', async () => {
    const storm = async (retry: Retry) => {
      const { middleware, attempts } = servedAttempts(failFirst(Number.POSITIVE_INFINITY));
      const { channel } = await serverAndChannel(cleanup, { middleware: [middleware] });
      const client = createClientFactory()
        .use(retry)
        .create(TestServiceDefinition, channel) as RetryingClient;
      await Promise.all(
        Array.from({ length: 200 }, () =>
          client.unary({}, { retry: true, retryBaseDelayMs: 1 }).catch(() => {}),
        ),
      );
      return attempts.length;
    };
    // A default budget (20 % of calls plus 100) would have allowed 140 retries.
    expect(await sameWithBoth(({ retry }) => storm(retry))).toBe(400);
  });

  test('order: inside the deadline middleware (nice-grpc’s README), the deadline ends the backoff', async () => {
    const result = await sameWithBoth((pair) =>
      unaryCall(pair, { retry: true, retryBaseDelayMs: 5_000, deadline: 200 }, { failures: 5 }),
    );
    expect(result.outcome).toBe('DEADLINE_EXCEEDED: Deadline exceeded');
    expect(result.attempts).toBe(1);
    // The hook was told of the retry before its backoff began, as the original tells it.
    expect(result.hookCalls.map(([attempt, code]) => [attempt, code])).toEqual([
      [0, Status.UNAVAILABLE],
    ]);
  });

  test('order: inside the deadline middleware, retries within the deadline happen as planned', async () => {
    const result = await sameWithBoth((pair) =>
      unaryCall(
        pair,
        { retry: true, retryMaxAttempts: 3, retryBaseDelayMs: 1, deadline: 5_000 },
        { failures: 2 },
      ),
    );
    expect([result.outcome, result.attempts]).toEqual(['ok p', 3]);
  });

  test('a caller’s abort during the backoff ends the call with an AbortError', async () => {
    const aborted = async (pair: (typeof pairs)[number]) => {
      const controller = new AbortController();
      const call = unaryCall(pair, {
        retry: true,
        retryBaseDelayMs: 5_000,
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(), 100);
      return call;
    };
    const result = await sameWithBoth(aborted);
    expect([result.outcome, result.attempts]).toEqual(['AbortError', 1]);
  });
});
