import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  create,
  createFileRegistry,
  type DescMethodBiDiStreaming,
  type DescMethodClientStreaming,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  fromBinary,
  toBinary,
} from '@bufbuild/protobuf';
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_wrappers,
  StringValueSchema,
} from '@bufbuild/protobuf/wkt';
import type { HandlerContext } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';

/**
 * `switchyard.cancellation.test.Hop`: Unary, ServerStream, ClientStream and Bidi over
 * google.protobuf.StringValue, so that nice-grpc hops and a connect-node hop share one service
 * without generated code.
 */
const PACKAGE = 'switchyard.cancellation.test';
const KINDS = {
  unary: { name: 'Unary', requestStream: false, responseStream: false },
  serverStream: { name: 'ServerStream', requestStream: false, responseStream: true },
  clientStream: { name: 'ClientStream', requestStream: true, responseStream: false },
  bidi: { name: 'Bidi', requestStream: true, responseStream: true },
} as const;
export type Kind = keyof typeof KINDS;

// nice-grpc requires messages to be objects.
export interface Text {
  value: string;
}
const serialize = ({ value }: Text) =>
  Buffer.from(toBinary(StringValueSchema, create(StringValueSchema, { value })));
const deserialize = (bytes: Buffer): Text => ({
  value: fromBinary(StringValueSchema, bytes).value,
});

const stringValues = {
  requestSerialize: serialize,
  requestDeserialize: deserialize,
  responseSerialize: serialize,
  responseDeserialize: deserialize,
};
const path = (kind: Kind) => `/${PACKAGE}.Hop/${KINDS[kind].name}`;

/** The Hop service for nice-grpc servers and clients: every call kind. */
export const Hop = {
  unary: { path: path('unary'), requestStream: false, responseStream: false, ...stringValues },
  serverStream: {
    path: path('serverStream'),
    requestStream: false,
    responseStream: true,
    ...stringValues,
  },
  clientStream: {
    path: path('clientStream'),
    requestStream: true,
    responseStream: false,
    ...stringValues,
  },
  bidi: { path: path('bidi'), requestStream: true, responseStream: true, ...stringValues },
} as const;

const service = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: 'switchyard/cancellation/test/hop.proto',
    package: PACKAGE,
    syntax: 'proto3',
    dependency: ['google/protobuf/wrappers.proto'],
    service: [
      {
        name: 'Hop',
        method: Object.values(KINDS).map(({ name, requestStream, responseStream }) => ({
          name,
          inputType: '.google.protobuf.StringValue',
          outputType: '.google.protobuf.StringValue',
          clientStreaming: requestStream,
          serverStreaming: responseStream,
        })),
      },
    ],
  }),
  () => file_google_protobuf_wrappers,
).getService(`${PACKAGE}.Hop`)!;
type Str = typeof StringValueSchema;
const connectMethod = (name: string) => service.methods.find((m) => m.name === name)!;

/** What the last hop saw of one call, on a clock shared with the test (`performance.now()`). */
export interface LastHopCall {
  /** `context.timeoutMs()` when the handler started. */
  timeoutMs: number | undefined;
  /** When the handler's signal aborted. */
  signalAbortedAt: Promise<number>;
}

/** One HTTP/2 stream as the last hop's server saw it close. */
export interface ClosedStream {
  /** The RST_STREAM code it closed with (0: closed normally). */
  rstCode: number;
  at: number;
}

/**
 * The last hop: a connect-node server on node:http2, so the test sees both the handler's signal
 * and the HTTP/2 stream underneath it. Every handler holds the call open until it is cancelled;
 * streaming responses first send one message, so the caller knows the handler is running.
 */
export async function startLastHop() {
  const calls: LastHopCall[] = [];
  const closed: ClosedStream[] = [];
  let started: (() => void) | undefined;

  function begin(context: HandlerContext): Promise<never> {
    const signalAbortedAt = new Promise<number>((resolve) =>
      context.signal.addEventListener('abort', () => resolve(performance.now()), { once: true }),
    );
    calls.push({ timeoutMs: context.timeoutMs(), signalAbortedAt });
    started?.();
    return signalAbortedAt.then(() => {
      throw context.signal.reason;
    });
  }

  const server = http2.createServer(
    connectNodeAdapter({
      grpc: true,
      grpcWeb: false,
      connect: false,
      routes: (router) =>
        router
          .rpc(connectMethod('Unary') as DescMethodUnary<Str, Str>, (_, context) => begin(context))
          .rpc(
            connectMethod('ServerStream') as DescMethodServerStreaming<Str, Str>,
            async function* (request, context) {
              const held = begin(context);
              yield { value: request.value };
              await held;
            },
          )
          .rpc(
            connectMethod('ClientStream') as DescMethodClientStreaming<Str, Str>,
            async (requests, context) => {
              const held = begin(context);
              for await (const _ of requests) break;
              return held;
            },
          )
          .rpc(
            connectMethod('Bidi') as DescMethodBiDiStreaming<Str, Str>,
            async function* (requests, context) {
              const held = begin(context);
              for await (const request of requests) {
                yield { value: request.value };
                break;
              }
              await held;
            },
          ),
    }),
  );
  let opened = 0;
  server.on('stream', (stream) => {
    opened++;
    stream.once('close', () => closed.push({ rstCode: stream.rstCode, at: performance.now() }));
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  async function waitForClosed(count: number, withinMs = 2_000) {
    const giveUp = performance.now() + withinMs;
    while (closed.length < count) {
      if (performance.now() > giveUp) {
        throw new Error(`only ${closed.length} of ${count} streams closed within ${withinMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    return closed;
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    calls,
    closed,
    /** Resolves when the next call reaches a handler. */
    nextCall: () =>
      new Promise<void>((resolve) => {
        started = resolve;
      }),
    /** Resolves once every stream opened so far has closed, so the next one is told apart. */
    settled: () => waitForClosed(opened),
    /** Resolves once the server has seen `count` streams close; fails after `withinMs`. */
    streamsClosed: waitForClosed,
    stop: () => {
      for (const session of sessions) session.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
