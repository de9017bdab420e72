import { deadlineMiddleware as switchyardDeadlineMiddleware } from '@switchyard/middleware-deadline';
import { type CallScope, runInCallScope } from '@switchyard/nice-grpc';
import { CleanupSteps, TestServiceDefinition } from '@switchyard/testing';
import { delay } from 'abort-controller-x';
import { createClientFactory } from 'nice-grpc';
import { deadlineMiddleware as niceGrpcDeadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { type ClientError, Metadata, ServerError, Status } from 'nice-grpc-common';
import { afterEach, expect, test } from 'vitest';
import {
  attemptStarts,
  failFirst,
  servedAttempts,
  serverAndChannel,
  switchyardRetry,
} from './support.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

const deadlineMiddlewares = [
  ['nice-grpc-client-middleware-deadline', niceGrpcDeadlineMiddleware],
  ['@switchyard/middleware-deadline', switchyardDeadlineMiddleware],
] as const;

const DEADLINE_MS = 300;
const MIN_ATTEMPT_MS = 10;
const alwaysRetry = {
  retry: true,
  retryMaxAttempts: Number.POSITIVE_INFINITY,
  retryBaseDelayMs: 20,
  retryMaxDelayMs: 40,
} as const;

async function channelTo(decide: Parameters<typeof servedAttempts>[0]) {
  const { middleware, attempts } = servedAttempts(decide);
  const { channel } = await serverAndChannel(cleanup, { middleware: [middleware] });
  return { channel, attempts };
}

async function timedFailure(call: () => Promise<unknown>) {
  const started = Date.now();
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { started, ended: Date.now(), error: error as ClientError };
}

for (const [name, deadlineMiddleware] of deadlineMiddlewares) {
  test(`deadline option, retry outside ${name}: no attempt starts after the deadline (or with < 10 ms left), and the call ends by deadline + 20 ms`, async () => {
    const { channel, attempts } = await channelTo(failFirst(Number.POSITIVE_INFINITY));
    const clock = attemptStarts();
    const client = createClientFactory()
      .use(clock.middleware)
      .use(deadlineMiddleware)
      .use(switchyardRetry())
      .create(TestServiceDefinition, channel);
    const deadline = new Date(Date.now() + DEADLINE_MS);
    const { ended, error } = await timedFailure(() =>
      client.unary({}, { ...alwaysRetry, deadline }),
    );
    // The last attempt's own failure, or DEADLINE_EXCEEDED when the deadline cut it short.
    expect([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]).toContain(error.code);
    expect(clock.starts.length).toBeGreaterThan(3);
    expect(attempts).toHaveLength(clock.starts.length);
    for (const start of clock.starts) {
      expect(start).toBeLessThanOrEqual(deadline.getTime() - MIN_ATTEMPT_MS);
    }
    expect(ended).toBeLessThanOrEqual(deadline.getTime() + 20);
  });
}

test('nice-grpc’s deadline middleware outside the retry (its recommended order): its deadline still ends the call and the backoff', async () => {
  // The retry middleware cannot see a deadline that an outer middleware consumed, so here the
  // guarantee is the deadline middleware's timer: attempts stop when it fires.
  const { channel } = await channelTo(failFirst(Number.POSITIVE_INFINITY));
  const clock = attemptStarts();
  const client = createClientFactory()
    .use(clock.middleware)
    .use(switchyardRetry())
    .use(niceGrpcDeadlineMiddleware)
    .create(TestServiceDefinition, channel);
  const deadline = new Date(Date.now() + DEADLINE_MS);
  const { ended, error } = await timedFailure(() => client.unary({}, { ...alwaysRetry, deadline }));
  expect(error.code).toBe(Status.DEADLINE_EXCEEDED);
  expect(clock.starts.length).toBeGreaterThan(3);
  expect(ended).toBeLessThanOrEqual(deadline.getTime() + 20);
});

test('the deadline of the inbound call being served bounds the retries of the calls its handler makes', async () => {
  const { channel } = await channelTo(failFirst(Number.POSITIVE_INFINITY));
  const clock = attemptStarts();
  const client = createClientFactory()
    .use(clock.middleware)
    .use(switchyardRetry())
    .create(TestServiceDefinition, channel);
  const started = Date.now();
  const scope: CallScope = {
    method: '/upstream.Service/Handle',
    deadline: new Date(started + DEADLINE_MS),
    signal: new AbortController().signal,
    forwardMetadata: Metadata(),
    peer: undefined,
    inbound: Metadata(),
  };
  const { ended, error } = await timedFailure(() =>
    runInCallScope(scope, () => client.unary({}, alwaysRetry)),
  );
  // No deadline middleware here: every attempt fails on its own, and the retry gives up in time.
  expect(error.code).toBe(Status.UNAVAILABLE);
  expect(clock.starts.length).toBeGreaterThan(3);
  for (const start of clock.starts) {
    expect(start - started).toBeLessThanOrEqual(DEADLINE_MS - MIN_ATTEMPT_MS);
  }
  expect(ended - started).toBeLessThanOrEqual(DEADLINE_MS + 20);
});

test('the last attempt gets what is left of the deadline, not a fresh relative one', async () => {
  // Attempt 1 fails after 100 ms; attempt 2 would hang for 5 s.
  const { middleware, attempts } = servedAttempts();
  const { channel } = await serverAndChannel(cleanup, {
    middleware: [middleware],
    implementation: () => ({
      unary: async (_request, context) => {
        if (attempts.length === 1) {
          await delay(context.signal, 100);
          throw new ServerError(Status.UNAVAILABLE, 'first attempt fails');
        }
        await delay(context.signal, 5000);
        throw new ServerError(Status.INTERNAL, 'unreachable');
      },
      serverStream: async function* () {},
      clientStream: async () => ({}) as never,
      bidi: async function* () {},
    }),
  });
  const client = createClientFactory()
    .use(switchyardDeadlineMiddleware)
    .use(switchyardRetry({ random: () => 0 }))
    .create(TestServiceDefinition, channel);
  const { started, ended, error } = await timedFailure(() =>
    client.unary({}, { ...alwaysRetry, deadline: DEADLINE_MS }),
  );
  expect(error.code).toBe(Status.DEADLINE_EXCEEDED);
  expect(attempts).toHaveLength(2);
  expect(ended - started).toBeLessThanOrEqual(DEADLINE_MS + 20);
});

test('a pushback reaching past the deadline fails at once with the original error', async () => {
  const { channel, attempts } = await channelTo((_n, context) => {
    context.trailer.set('grpc-retry-pushback-ms', '500');
    throw new ServerError(Status.UNAVAILABLE, 'come back in 500 ms');
  });
  const client = createClientFactory()
    .use(niceGrpcDeadlineMiddleware)
    .use(switchyardRetry())
    .create(TestServiceDefinition, channel);
  const { started, ended, error } = await timedFailure(() =>
    client.unary({}, { ...alwaysRetry, deadline: new Date(Date.now() + DEADLINE_MS) }),
  );
  expect(error.details).toBe('come back in 500 ms');
  expect(attempts).toHaveLength(1);
  expect(ended - started).toBeLessThan(DEADLINE_MS);
});
