import { CleanupSteps } from '@switchyard/testing';
import {
  type CallContext,
  ClientError,
  ServerError,
  type ServerMiddlewareCall,
  Status,
} from 'nice-grpc-common';
import { afterEach, expect, test } from 'vitest';
import { retryingClient } from './support.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

/**
 * A server whose n-th call sends `messagesBeforeFailure(n)` messages, then fails with
 * UNAVAILABLE; `undefined` lets the call finish normally.
 */
async function streamingServer(messagesBeforeFailure: (n: number) => number | undefined) {
  let calls = 0;
  async function* middleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ) {
    const failAfter = messagesBeforeFailure(++calls);
    if (failAfter === undefined) return yield* call.next(call.request, context);
    let sent = 0;
    for await (const message of call.next(call.request, context)) {
      if (sent === failAfter) break;
      sent++;
      yield message;
    }
    throw new ServerError(Status.UNAVAILABLE, `failed after ${sent} messages`);
  }
  const client = await retryingClient(cleanup, middleware);
  return { client, calls: () => calls };
}

const retryable = { retry: true, retryMaxAttempts: 5, retryBaseDelayMs: 1 } as const;

test('a failure before the first response message is retried', async () => {
  const { client, calls } = await streamingServer((n) => (n === 1 ? 0 : undefined));
  const sequences: number[] = [];
  for await (const response of client.serverStream({ responseCount: 3 }, retryable)) {
    sequences.push(response.sequence);
  }
  expect(sequences).toEqual([0, 1, 2]);
  expect(calls()).toBe(2);
});

test('a failure after a response message surfaces unchanged, without a retry', async () => {
  const { client, calls } = await streamingServer((n) => (n === 1 ? 2 : undefined));
  const sequences: number[] = [];
  const error = await (async () => {
    for await (const response of client.serverStream({ responseCount: 5 }, retryable)) {
      sequences.push(response.sequence);
    }
  })().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ClientError);
  expect([(error as ClientError).code, (error as ClientError).details]).toEqual([
    Status.UNAVAILABLE,
    'failed after 2 messages',
  ]);
  expect(sequences).toEqual([0, 1]);
  expect(calls()).toBe(1);
});

test('a caller that stops reading early cancels the call; nothing is retried', async () => {
  const { client, calls } = await streamingServer(() => undefined);
  for await (const response of client.serverStream({ responseCount: 100, delayMs: 5 }, retryable)) {
    if (response.sequence === 1) break;
  }
  expect(calls()).toBe(1);
});
