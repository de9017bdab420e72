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
 * A server that records the payloads each call received and fails the n-th call with `code`
 * on receiving its `failOn(n)`-th message (`undefined`: never).
 */
async function recordingServer(
  failOn: (n: number) => number | undefined,
  code: Status = Status.UNAVAILABLE,
) {
  const received: string[][] = [];
  async function* middleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ) {
    const payloads: string[] = [];
    received.push(payloads);
    const failAt = failOn(received.length);
    async function* watched(requests: AsyncIterable<Request>) {
      for await (const request of requests) {
        payloads.push((request as TestRequest).payload.slice(0, 8));
        if (payloads.length === failAt) {
          throw new ServerError(code, `failed on message ${failAt}`);
        }
        yield request;
      }
    }
    return yield* call.next(
      (call.requestStream ? watched(call.request) : call.request) as typeof call.request,
      context,
    );
  }
  const client = await retryingClient(cleanup, middleware);
  return { client, received };
}

/** A request stream that counts what it produces and notes when the caller closes it. */
function requestSource(
  count: number,
  { payloadBytes = 8, pauseBeforeMs = new Map<number, number>() } = {},
) {
  const state = { produced: 0, closed: false };
  async function* requests() {
    try {
      for (let i = 0; i < count; i++) {
        const pause = pauseBeforeMs.get(i);
        if (pause !== undefined) await new Promise((resolve) => setTimeout(resolve, pause));
        state.produced++;
        yield { payload: String(i).padEnd(payloadBytes, '.') };
      }
    } finally {
      state.closed = true;
    }
  }
  return { requests: requests(), state };
}

const retryable = { retry: true, retryMaxAttempts: 3, retryBaseDelayMs: 1 } as const;
const names = (n: number) => Array.from({ length: n }, (_, i) => String(i).padEnd(8, '.'));

test('a failure while the request stream is buffered and no response has arrived is retried with every message replayed', async () => {
  const { client, received } = await recordingServer((n) => (n === 1 ? 3 : undefined));
  const source = requestSource(5);
  const response = await client.clientStream(source.requests, retryable);
  expect(response.receivedCount).toBe(5);
  expect(received).toEqual([names(3), names(5)]);
  // The caller's stream was read once; the retry replayed the buffer.
  expect(source.state.produced).toBe(5);
});

test('a retry that starts while the source is still producing waits for the same next message', async () => {
  const { client, received } = await recordingServer((n) => (n === 1 ? 2 : undefined));
  // The server fails on message 2 while the client waits 100 ms for message 3.
  const source = requestSource(5, { pauseBeforeMs: new Map([[2, 100]]) });
  const response = await client.clientStream(source.requests, retryable);
  expect(response.receivedCount).toBe(5);
  expect(received).toEqual([names(2), names(5)]);
  expect(source.state.produced).toBe(5);
});

test('a request stream over 64 KiB is not retried: the error surfaces unchanged', async () => {
  const { client, received } = await recordingServer((n) => (n === 1 ? 5 : undefined));
  // 5 × 20 KiB: the buffer limit is crossed at the fourth message.
  const source = requestSource(5, { payloadBytes: 20 * 1024 });
  const error = await client.clientStream(source.requests, retryable).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ClientError);
  expect([(error as ClientError).code, (error as ClientError).details]).toEqual([
    Status.UNAVAILABLE,
    'failed on message 5',
  ]);
  expect(received).toHaveLength(1);
});

test('retryBufferLimitBytes sets the limit', async () => {
  const { client, received } = await recordingServer((n) => (n === 1 ? 3 : undefined));
  const source = requestSource(3, { payloadBytes: 400 });
  await client
    .clientStream(source.requests, { ...retryable, retryBufferLimitBytes: 1000 })
    .catch(() => {});
  expect(received).toHaveLength(1);

  const { client: roomy, received: roomyReceived } = await recordingServer((n) =>
    n === 1 ? 3 : undefined,
  );
  const again = requestSource(3, { payloadBytes: 400 });
  await roomy.clientStream(again.requests, { ...retryable, retryBufferLimitBytes: 1300 });
  expect(roomyReceived).toHaveLength(2);
});

test('when the call fails for good, the caller’s request stream is closed', async () => {
  const { client } = await recordingServer(() => 2, Status.INVALID_ARGUMENT);
  const source = requestSource(1000, { pauseBeforeMs: new Map([[2, 50]]) });
  await expect(client.clientStream(source.requests, retryable)).rejects.toBeInstanceOf(ClientError);
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(source.state.closed).toBe(true);
  expect(source.state.produced).toBeLessThan(1000);
});
