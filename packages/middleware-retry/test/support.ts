import http2 from 'node:http2';
import { createServer as createNetServer } from 'node:net';
import { encodeMessage } from '@switchyard/core';
import {
  type CleanupSteps,
  type StartServerOptions,
  startServer,
  TestResponse,
  TestServiceDefinition,
} from '@switchyard/testing';
import { createChannel, createClientFactory } from 'nice-grpc';
import {
  type CallContext,
  type ClientMiddleware,
  ServerError,
  type ServerMiddleware,
  type ServerMiddlewareCall,
  Status,
} from 'nice-grpc-common';
import {
  createRetryMiddleware,
  type RetryMiddlewareOptions,
  SWITCHYARD_RETRY_DEFAULTS,
} from '../src/index.js';

/**
 * The middleware with Switchyard's defaults (streams, full jitter, transparent retry, pushback,
 * deadline planning): what these tests exercise beyond the drop-in, which compatibility.test.ts
 * holds to nice-grpc's defaults.
 */
export function switchyardRetry(options: RetryMiddlewareOptions = {}) {
  return createRetryMiddleware({ defaults: SWITCHYARD_RETRY_DEFAULTS, ...options });
}

/**
 * A TestService server on 127.0.0.1 and a channel to it, both closed after the test; the
 * server forcibly, since a test may leave calls hanging.
 */
export async function serverAndChannel(cleanup: CleanupSteps, options: StartServerOptions) {
  const server = await startServer(options);
  cleanup.defer(() => server.forceStop());
  const channel = createChannel(server.address);
  cleanup.defer(() => channel.close());
  return { server, channel };
}

/** A client retrying with {@link switchyardRetry}, calling a TestService server with `middleware`. */
export async function retryingClient(cleanup: CleanupSteps, middleware: ServerMiddleware) {
  const { channel } = await serverAndChannel(cleanup, { middleware: [middleware] });
  return createClientFactory().use(switchyardRetry()).create(TestServiceDefinition, channel);
}

/** One call as the server saw it. */
export interface ServedAttempt {
  readonly path: string;
  /** `Date.now()` when the server's middleware saw the call. */
  readonly at: number;
  /** The `grpc-previous-rpc-attempts` header, when sent. */
  readonly previousAttempts: string | undefined;
  /** Set when the call's signal aborted: the client cancelled it or its connection went away. */
  cancelled: boolean;
}

/**
 * A server middleware that records every call and lets a test decide, per call, to fail it
 * before the handler runs: `decide(n, context)` gets the 1-based call number and may throw a
 * `ServerError` (after setting trailers on `context.trailer`).
 */
export function servedAttempts(decide: (n: number, context: CallContext) => void = () => {}): {
  middleware: ServerMiddleware;
  attempts: ServedAttempt[];
} {
  const attempts: ServedAttempt[] = [];
  async function* middleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ) {
    const attempt: ServedAttempt = {
      path: call.method.path,
      at: Date.now(),
      previousAttempts: context.metadata.get('grpc-previous-rpc-attempts'),
      cancelled: false,
    };
    attempts.push(attempt);
    context.signal.addEventListener('abort', () => {
      attempt.cancelled = true;
    });
    decide(attempts.length, context);
    return yield* call.next(call.request, context);
  }
  return { middleware, attempts };
}

/** Fails the first `count` calls with `code` (UNAVAILABLE unless given). */
export function failFirst(count: number, code: Status = Status.UNAVAILABLE) {
  return (n: number) => {
    if (n <= count) throw new ServerError(code, `attempt ${n} failed on purpose`);
  };
}

/** A client middleware, installed inside the retry middleware, that notes when each attempt starts. */
export function attemptStarts(): { middleware: ClientMiddleware; starts: number[] } {
  const starts: number[] = [];
  const middleware: ClientMiddleware = async function* (call, options) {
    starts.push(Date.now());
    return yield* call.next(call.request, options);
  };
  return { middleware, starts };
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** What the raw HTTP/2 server does with a stream. */
export type RawStreamAction =
  | 'answer'
  /** RST_STREAM(REFUSED_STREAM): "not processed", RFC 9113 §8.7. */
  | 'refuse'
  /** GOAWAY whose last-stream-id is below this stream's. */
  | 'goaway'
  /** Reads the request, then destroys the connection without answering. */
  | 'drop';

/**
 * A plain node:http2 server speaking just enough gRPC to answer TestService.Unary, so tests can
 * produce the transport failures a nice-grpc server never sends: refused streams, GOAWAY,
 * dropped connections. `act(n)` decides for the n-th stream (1-based).
 */
export async function startRawGrpcServer(act: (n: number) => RawStreamAction) {
  let streams = 0;
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream) => {
    streams++;
    stream.on('error', () => {});
    switch (act(streams)) {
      case 'answer':
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc' },
          { waitForTrailers: true },
        );
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(
          encodeMessage(TestResponse.encode(TestResponse.fromPartial({ backend: 'raw' })).finish()),
        );
        break;
      case 'refuse':
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        break;
      case 'goaway':
        stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, (stream.id ?? 1) - 2);
        break;
      case 'drop':
        stream.resume();
        stream.on('end', () => stream.session?.destroy());
        break;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    streams: () => streams,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() waits for sessions; the client channel holds one open.
        for (const session of sessions) session.destroy();
      }),
  };
}
