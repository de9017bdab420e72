import { CleanupSteps, TestServiceDefinition } from '@switchyard/testing';
import { createClientFactory } from 'nice-grpc';
import {
  type RetryOptions as NiceGrpcRetryOptions,
  retryMiddleware as niceGrpcRetryMiddleware,
} from 'nice-grpc-client-middleware-retry';
import { ClientError, type ClientMiddleware, Status } from 'nice-grpc-common';
import { afterEach, expect, test } from 'vitest';
import { createRetryMiddleware } from '../src/index.js';
import { failFirst, servedAttempts, serverAndChannel } from './support.js';

// Side by side with nice-grpc-client-middleware-retry: the same call options, typed as its
// RetryOptions, give the same attempts, hook calls and errors.

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

const implementations: [string, ClientMiddleware<NiceGrpcRetryOptions>][] = [
  ['nice-grpc-client-middleware-retry', niceGrpcRetryMiddleware],
  ['@switchyard/middleware-retry', createRetryMiddleware()],
];

async function run(
  middleware: ClientMiddleware<NiceGrpcRetryOptions>,
  failures: number,
  options: NiceGrpcRetryOptions,
) {
  const { middleware: recorder, attempts } = servedAttempts(failFirst(failures));
  const { channel } = await serverAndChannel(cleanup, { middleware: [recorder] });
  const client = createClientFactory().use(middleware).create(TestServiceDefinition, channel);
  const hookCalls: [number, Status][] = [];
  const outcome = await client
    .unary(
      { payload: 'p' },
      {
        ...options,
        onRetryableError: (error, attempt) => hookCalls.push([attempt, error.code]),
      },
    )
    .then(
      (response) => `ok ${response.payload}`,
      (error: unknown) =>
        error instanceof ClientError ? `${Status[error.code]}: ${error.details}` : String(error),
    );
  return { outcome, attempts: attempts.length, hookCalls };
}

const scenarios: [string, number, NiceGrpcRetryOptions][] = [
  [
    'retry: true, two failures, retryMaxAttempts 2',
    2,
    { retry: true, retryMaxAttempts: 2, retryBaseDelayMs: 5 },
  ],
  ['retryMaxAttempts exhausted', 5, { retry: true, retryMaxAttempts: 2, retryBaseDelayMs: 5 }],
  ['default retryMaxAttempts (one retry)', 1, { retry: true, retryBaseDelayMs: 5 }],
  ['not idempotent, no retry option', 1, { retryMaxAttempts: 3, retryBaseDelayMs: 5 }],
  [
    'status outside retryableStatuses',
    1,
    { retry: true, retryableStatuses: [Status.INTERNAL], retryBaseDelayMs: 5 },
  ],
];

for (const [name, failures, options] of scenarios) {
  test(`same behaviour: ${name}`, async () => {
    const results = [];
    for (const [, middleware] of implementations)
      results.push(await run(middleware, failures, options));
    expect(results[1]).toEqual(results[0]);
  });
}
