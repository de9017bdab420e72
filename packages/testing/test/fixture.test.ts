import { isAbortError } from 'abort-controller-x';
import { ClientError, Metadata, type ServerMiddleware, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import { filler } from '../src/behavior.js';
import {
  callTestService,
  createConnectClient,
  createTestClient,
  createTestServiceImpl,
  type RunningTestServer,
  type RunningTestServers,
  startServer,
  startServers,
  type TestClient,
  type TestRequest,
} from '../src/index.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server middleware reporting how, and how long after it started, the handler ended in error. */
function observeHandlerEnd(): {
  middleware: ServerMiddleware;
  ended: Promise<{ error: unknown; ms: number }>;
} {
  let report: (end: { error: unknown; ms: number }) => void = () => {};
  const ended = new Promise<{ error: unknown; ms: number }>((resolve) => {
    report = resolve;
  });
  const middleware: ServerMiddleware = async function* (call, context) {
    const started = performance.now();
    try {
      return yield* call.next(call.request, context);
    } catch (error) {
      report({ error, ms: performance.now() - started });
      throw error;
    }
  };
  return { middleware, ended };
}

async function serve(options?: Parameters<typeof startServer>[0]): Promise<RunningTestServer> {
  const server = await startServer(options);
  cleanups.push(() => server.forceStop());
  return server;
}

function connect(address: string, options?: Parameters<typeof createTestClient>[1]): TestClient {
  const client = createTestClient(address, options);
  cleanups.push(() => client.close());
  return client;
}

describe('the nice-grpc TestService fixture', () => {
  it('Unary echoes the payload as the named backend', async () => {
    const server = await serve({ backend: 'alpha' });
    const { client } = connect(server.address);
    expect(server.address).toBe(`127.0.0.1:${server.port}`);
    expect(await client.unary({ payload: 'hello' })).toEqual({
      backend: 'alpha',
      payload: 'hello',
      sequence: 0,
      receivedCount: 1,
      metadata: {},
      filler: new Uint8Array(),
    });
  });

  it('Unary waits delay_ms, adds response_size bytes of filler and echoes metadata', async () => {
    const server = await serve();
    const { client } = connect(server.address);
    const started = performance.now();
    const response = await client.unary(
      { delayMs: 50, responseSize: 300, echoMetadata: ['x-a', 'x-b', 'x-missing'] },
      { metadata: Metadata({ 'x-a': '1' }) },
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(Buffer.from(response.filler)).toEqual(Buffer.from(filler(300)));
    expect(response.filler[257]).toBe(1);
    expect(response.metadata).toEqual({ 'x-a': '1' });
  });

  it('fails with the requested status code and message', async () => {
    const server = await serve();
    const { client } = connect(server.address);
    const error = await client
      .unary({ statusCode: Status.UNAVAILABLE, statusMessage: 'try later' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({ code: Status.UNAVAILABLE, details: 'try later' });
  });

  it('ServerStream sends response_count messages with increasing sequence, pausing before each', async () => {
    const server = await serve();
    const { client } = connect(server.address);
    const started = performance.now();
    const arrivals: number[] = [];
    const sequences: number[] = [];
    for await (const response of client.serverStream({ responseCount: 4, delayMs: 20 })) {
      arrivals.push(performance.now() - started);
      sequences.push(response.sequence);
    }
    expect(sequences).toEqual([0, 1, 2, 3]);
    expect(arrivals[3]).toBeGreaterThanOrEqual(75);
  });

  it('ClientStream answers after the client finishes, with the count and the last payload', async () => {
    const server = await serve();
    const { client } = connect(server.address);
    async function* requests(): AsyncIterable<Partial<TestRequest>> {
      yield { payload: 'one' };
      yield { payload: 'two' };
      yield { payload: 'three', responseSize: 2 };
    }
    const response = await client.clientStream(requests());
    expect(response).toMatchObject({ payload: 'three', receivedCount: 3 });
    expect([...response.filler]).toEqual([0, 1]);
  });

  it('Bidi answers each request before the next is sent', async () => {
    const server = await serve();
    const { client } = connect(server.address);
    // Each request is released only once the previous response arrived, so
    // the call completes only if the server answers message by message.
    const answered: Array<() => void> = [];
    async function* requests(): AsyncIterable<Partial<TestRequest>> {
      for (const payload of ['a', 'b', 'c']) {
        yield { payload };
        await new Promise<void>((resolve) => answered.push(resolve));
      }
    }
    const responses = [];
    for await (const response of client.bidi(requests())) {
      responses.push(response);
      answered.shift()?.();
    }
    expect(responses.map((r) => [r.payload, r.sequence, r.receivedCount])).toEqual([
      ['a', 0, 1],
      ['b', 1, 2],
      ['c', 2, 3],
    ]);
  });

  it('ends a delay as soon as the call is cancelled', async () => {
    const handler = observeHandlerEnd();
    const server = await serve({ middleware: [handler.middleware] });
    const { client } = connect(server.address);
    const abort = new AbortController();
    const call = client.unary({ delayMs: 20_000 }, { signal: abort.signal });
    setTimeout(() => abort.abort(), 50);
    await expect(call).rejects.toSatisfy(isAbortError);
    const ended = await handler.ended;
    expect(isAbortError(ended.error)).toBe(true);
    expect(ended.ms).toBeLessThan(5_000);
  });

  it('ends a delay at the deadline the client sent', async () => {
    const handler = observeHandlerEnd();
    const server = await serve({ middleware: [handler.middleware] });
    // nice-grpc sends deadlines only through a middleware package; connect's
    // timeoutMs puts the same grpc-timeout header on the wire.
    const connectClient = createConnectClient(server.address);
    cleanups.push(() => connectClient.close());
    const call = connectClient.client.unary({ delayMs: 20_000 }, { timeoutMs: 100 });
    await expect(call).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    const ended = await handler.ended;
    expect(isAbortError(ended.error)).toBe(true);
    expect(ended.ms).toBeLessThan(5_000);
  });

  it('runs server middleware in order, and client middleware from createTestClient', async () => {
    const order: string[] = [];
    const tag = (name: string): ServerMiddleware =>
      async function* (call, context) {
        order.push(name);
        return yield* call.next(call.request, context);
      };
    const server = await serve({ middleware: [tag('first'), tag('second')] });
    const { client } = connect(server.address, {
      middleware: [
        async function* (call, options) {
          const metadata = options.metadata ?? Metadata();
          metadata.set('x-client-mw', 'yes');
          return yield* call.next(call.request, { ...options, metadata });
        },
      ],
    });
    const response = await client.unary({ echoMetadata: ['x-client-mw'] });
    expect(order).toEqual(['first', 'second']);
    expect(response.metadata).toEqual({ 'x-client-mw': 'yes' });
  });

  it('takes an implementation override', async () => {
    const server = await serve({
      backend: 'custom',
      implementation: (backend) => ({
        ...createTestServiceImpl({ backend }),
        unary: async (request) => ({ backend, payload: request.payload.toUpperCase() }),
      }),
    });
    const { client } = connect(server.address);
    expect(await client.unary({ payload: 'shout' })).toMatchObject({
      backend: 'custom',
      payload: 'SHOUT',
    });
    for await (const streamed of client.serverStream({ payload: 'calm' })) {
      expect(streamed).toMatchObject({ backend: 'custom', payload: 'calm' });
    }
  });

  it('stop() lets a running call finish; forceStop() cancels it', async () => {
    const graceful = await serve();
    const gracefulClient = connect(graceful.address).client;
    const running = gracefulClient.unary({ payload: 'finish me', delayMs: 100 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await graceful.stop();
    expect(await running).toMatchObject({ payload: 'finish me' });

    const forced = await serve();
    const forcedClient = connect(forced.address).client;
    const cancelled = callTestService(forcedClient, {
      method: 'Unary',
      requests: [{ delayMs: 20_000 }],
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    forced.forceStop();
    expect((await cancelled).status.code).toBe(Status.CANCELLED);
  });
});

describe('startServers', () => {
  let group: RunningTestServers | undefined;
  afterEach(() => group?.forceStop());

  it('starts n servers on distinct ports named backend-0..n-1', async () => {
    group = await startServers(3);
    expect(group.servers.map((s) => s.backend)).toEqual(['backend-0', 'backend-1', 'backend-2']);
    expect(new Set(group.servers.map((s) => s.port)).size).toBe(3);
    expect(group.addresses).toEqual(group.servers.map((s) => `127.0.0.1:${s.port}`));
    for (const server of group.servers) {
      const { client } = connect(server.address);
      expect((await client.unary({})).backend).toBe(server.backend);
    }
    await group.stop();
  });

  it('uses the given backend names, which must match the count', async () => {
    group = await startServers(2, { backends: ['east', 'west'] });
    expect(group.servers.map((s) => s.backend)).toEqual(['east', 'west']);
    await expect(startServers(2, { backends: ['only-one'] })).rejects.toThrow(
      /1 backend names given for 2 servers/,
    );
  });
});
