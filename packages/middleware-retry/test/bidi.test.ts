import { CleanupSteps, type TestRequest } from '@switchyard/testing';
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
 * A Bidi server whose n-th call fails with UNAVAILABLE on receiving request number
 * `failOn(n)` (1-based, before answering it). It answers every other request, unless `silent`:
 * then the failing call's earlier requests are read but never answered.
 */
async function bidiServer(failOn: (n: number) => number | undefined, { silent = false } = {}) {
  const received: number[] = [];
  async function* middleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ) {
    received.push(0);
    const index = received.length - 1;
    const failAt = failOn(received.length);
    async function* watched(requests: AsyncIterable<Request>) {
      for await (const request of requests) {
        received[index]!++;
        if (received[index] === failAt) {
          throw new ServerError(Status.UNAVAILABLE, `failed on request ${failAt}`);
        }
        if (!(silent && failAt !== undefined)) yield request;
      }
    }
    return yield* call.next(watched(call.request as AsyncIterable<Request>), context);
  }
  const client = await retryingClient(cleanup, middleware);
  return { client, received };
}

async function* requests(count: number, payloadBytes = 8): AsyncGenerator<Partial<TestRequest>> {
  for (let i = 0; i < count; i++) yield { payload: String(i).padEnd(payloadBytes, '.') };
}

async function collect(stream: AsyncIterable<{ receivedCount: number }>) {
  const counts: number[] = [];
  try {
    for await (const response of stream) counts.push(response.receivedCount);
    return { counts, error: undefined };
  } catch (error) {
    return { counts, error: error as ClientError };
  }
}

const retryable = { retry: true, retryMaxAttempts: 3, retryBaseDelayMs: 1 } as const;

test('a failure before any response, with the requests buffered, is retried with every request replayed', async () => {
  const { client, received } = await bidiServer((n) => (n === 1 ? 1 : undefined));
  const { counts, error } = await collect(client.bidi(requests(4), retryable));
  expect(error).toBeUndefined();
  expect(counts).toEqual([1, 2, 3, 4]);
  expect(received).toEqual([1, 4]);
});

test('a failure after a response has arrived surfaces unchanged, without a retry', async () => {
  const { client, received } = await bidiServer((n) => (n === 1 ? 2 : undefined));
  const { counts, error } = await collect(client.bidi(requests(4), retryable));
  expect(counts).toEqual([1]);
  expect(error).toBeInstanceOf(ClientError);
  expect([error!.code, error!.details]).toEqual([Status.UNAVAILABLE, 'failed on request 2']);
  expect(received).toHaveLength(1);
});

test('a failure after the request stream outgrew 64 KiB surfaces unchanged, even before any response', async () => {
  // The server reads 4 × 20 KiB without answering, then fails: the buffer limit was crossed at
  // the fourth request.
  const { client, received } = await bidiServer((n) => (n === 1 ? 4 : undefined), { silent: true });
  const { counts, error } = await collect(client.bidi(requests(4, 20 * 1024), retryable));
  expect(counts).toEqual([]);
  expect(error).toBeInstanceOf(ClientError);
  expect(error!.details).toBe('failed on request 4');
  expect(received).toEqual([4]);

  // The same call with small requests is retried.
  const small = await bidiServer((n) => (n === 1 ? 4 : undefined), { silent: true });
  const retried = await collect(small.client.bidi(requests(4), retryable));
  expect(retried.error).toBeUndefined();
  expect(retried.counts).toEqual([1, 2, 3, 4]);
  expect(small.received).toEqual([4, 4]);
});
