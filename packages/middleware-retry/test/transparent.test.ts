import {
  CleanupSteps,
  createTestServiceImpl,
  startServer,
  TestServiceDefinition,
} from '@switchyard/testing';
import { createChannel, createClientFactory, createServer } from 'nice-grpc';
import { ClientError, ServerError, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, test } from 'vitest';
import type { RetryEvent } from '../src/index.js';
import {
  closedPort,
  type RawStreamAction,
  servedAttempts,
  startRawGrpcServer,
  switchyardRetry,
} from './support.js';

// The test service's methods are not declared idempotent, so every retry below is transparent.

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

function client(address: string, channelOptions: Record<string, unknown> = {}, random = () => 0) {
  const channel = createChannel(address, undefined, channelOptions);
  cleanup.defer(() => channel.close());
  return createClientFactory()
    .use(switchyardRetry({ random }))
    .create(TestServiceDefinition, channel);
}

async function rawServer(act: (n: number) => RawStreamAction) {
  const server = await startRawGrpcServer(act);
  cleanup.defer(() => server.close());
  return server;
}

describe('transparent retry: failures that prove the server never processed the call', () => {
  test('connection refused: retried until the server is up', async () => {
    const port = await closedPort();
    const server = createServer();
    server.add(TestServiceDefinition, createTestServiceImpl({ backend: 'late' }));
    cleanup.defer(() => server.forceShutdown());
    const events: RetryEvent[] = [];
    const response = await client(
      `127.0.0.1:${port}`,
      {
        // grpc-js fails calls at once while it waits to reconnect; keep that wait short.
        'grpc.initial_reconnect_backoff_ms': 50,
        'grpc.max_reconnect_backoff_ms': 50,
      },
      // Backoff at its ceiling: 50 ms between attempts.
      () => 1,
    ).unary(
      { payload: 'hello' },
      {
        retryMaxAttempts: 20,
        retryBaseDelayMs: 50,
        retryMaxDelayMs: 50,
        onRetry: async (event) => {
          events.push(event);
          if (events.length === 1) await server.listen(`127.0.0.1:${port}`);
        },
      },
    );
    expect(response.backend).toBe('late');
    expect(events.length).toBeGreaterThanOrEqual(1);
    for (const event of events) {
      expect(event.kind).toBe('transparent');
      expect(event.error?.details).toMatch(/No connection established.*ECONNREFUSED/);
    }
  });

  test('REFUSED_STREAM: retried, after grpc-js’s own single transparent retry', async () => {
    const raw = await rawServer((n) => (n <= 3 ? 'refuse' : 'answer'));
    const events: RetryEvent[] = [];
    const response = await client(raw.address).unary(
      {},
      { retryMaxAttempts: 3, onRetry: (event) => events.push(event) },
    );
    expect(response.backend).toBe('raw');
    // grpc-js sends streams 1 and 2 for our first attempt, 3 and 4 for the second.
    expect(raw.streams()).toBe(4);
    expect(events.map((e) => [e.kind, e.error?.details])).toEqual([
      ['transparent', 'Stream refused by server'],
    ]);
  });

  test('REFUSED_STREAM with grpc-js retries disabled: each refusal is one attempt', async () => {
    const raw = await rawServer((n) => (n <= 2 ? 'refuse' : 'answer'));
    await client(raw.address, { 'grpc.enable_retries': 0 }).unary({}, { retryMaxAttempts: 3 });
    expect(raw.streams()).toBe(3);
  });

  test('GOAWAY before processing (stream above last-stream-id): retried on a new connection', async () => {
    const raw = await rawServer((n) => (n === 2 ? 'goaway' : 'answer'));
    const c = client(raw.address, { 'grpc.enable_retries': 0 });
    await c.unary({});
    const events: RetryEvent[] = [];
    const response = await c.unary({}, { onRetry: (event) => events.push(event) });
    expect(response.backend).toBe('raw');
    expect(raw.streams()).toBe(3);
    expect(events.map((e) => e.kind)).toEqual(['transparent']);
  });

  test('transparent retries count against retryMaxAttempts', async () => {
    const raw = await rawServer(() => 'refuse');
    const error = await client(raw.address, { 'grpc.enable_retries': 0 })
      .unary({}, { retryMaxAttempts: 2 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).details).toBe('Stream refused by server');
    expect(raw.streams()).toBe(3);
  });

  test('transparentRetry: false turns them off', async () => {
    const raw = await rawServer((n) => (n === 1 ? 'refuse' : 'answer'));
    const error = await client(raw.address, { 'grpc.enable_retries': 0 })
      .unary({}, { transparentRetry: false, retryMaxAttempts: 3 })
      .catch((e: unknown) => e);
    expect((error as ClientError).code).toBe(Status.UNAVAILABLE);
    expect(raw.streams()).toBe(1);
  });

  test('a server’s own UNAVAILABLE is never transparent, even worded like grpc-js’s', async () => {
    const { middleware, attempts } = servedAttempts(() => {
      throw new ServerError(Status.UNAVAILABLE, 'Stream refused by server');
    });
    const server = await startServer({ middleware: [middleware] });
    cleanup.defer(() => server.forceStop());
    const error = await client(server.address)
      .unary({}, { retryMaxAttempts: 3 })
      .catch((e: unknown) => e);
    expect((error as ClientError).details).toBe('Stream refused by server');
    expect(attempts).toHaveLength(1);
  });

  test('a dropped connection is not transparent: the handler may have run', async () => {
    const raw = await rawServer(() => 'drop');
    const error = await client(raw.address, { 'grpc.enable_retries': 0 })
      .unary({}, { retryMaxAttempts: 3 })
      .catch((e: unknown) => e);
    expect((error as ClientError).details).toBe('Connection dropped');
    expect(raw.streams()).toBe(1);
  });
});
