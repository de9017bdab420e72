import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  ServerListenerBuilder,
} from '@grpc/grpc-js';

// grpc-js does not export these two types from its entry point.
type AuthContext = ReturnType<ServerInterceptingCallInterface['getAuthContext']>;
type ConnectionInfo = ReturnType<ServerInterceptingCallInterface['getConnectionInfo']>;

/**
 * What grpc-js knows about an inbound call that nice-grpc's `CallContext` does not carry: the
 * deadline it parsed from `grpc-timeout` (which it removes from the metadata), the verified TLS
 * peer certificate, and both ends of the connection.
 */
export interface InboundCall {
  /** The client's deadline, `undefined` when it sent no `grpc-timeout`. */
  readonly deadline: Date | undefined;
  /** The TLS authentication context; empty for plaintext or unverified connections. */
  readonly authContext: AuthContext;
  /** Addresses and ports of the connection. */
  readonly connection: ConnectionInfo;
  /** The `:authority` the client asked for. */
  readonly host: string;
}

const storage = new AsyncLocalStorage<ServerInterceptingCallInterface>();

/**
 * grpc-js server interceptor (grpc-js ≥ 1.10, `new Server({ interceptors })`, which nice-grpc's
 * `createServer(options)` passes through) that makes the grpc-js call behind each nice-grpc
 * handler reachable from server middleware through {@link currentInboundCall}.
 *
 * grpc-js invokes the method handler from inside these listener callbacks (on half-close for
 * unary and server-streaming methods, on metadata for the others), and nice-grpc starts the
 * middleware chain from that handler, so running each callback inside the storage hands the
 * call to the whole chain without touching nice-grpc.
 */
export const inboundCallInterceptor: ServerInterceptor = (_method, call) =>
  new ServerInterceptingCall(call, {
    start(next) {
      next(
        new ServerListenerBuilder()
          .withOnReceiveMetadata((metadata, forward) => storage.run(call, forward, metadata))
          .withOnReceiveMessage((message, forward) => storage.run(call, forward, message))
          .withOnReceiveHalfClose((forward) => storage.run(call, forward))
          .build(),
      );
    },
  });

/**
 * Server options that install {@link inboundCallInterceptor} in front of any given ones:
 * `createServer(withInboundCall({ 'grpc.max_receive_message_length': … }))`.
 */
export function withInboundCall<T extends { interceptors?: ServerInterceptor[] }>(
  options: T = {} as T,
): T & { interceptors: ServerInterceptor[] } {
  const interceptors = options.interceptors ?? [];
  if (interceptors.includes(inboundCallInterceptor)) return { ...options, interceptors };
  return { ...options, interceptors: [inboundCallInterceptor, ...interceptors] };
}

/**
 * The grpc-js view of the inbound call whose handler is running, or `undefined` when the server
 * was created without {@link inboundCallInterceptor}.
 */
export function currentInboundCall(): InboundCall | undefined {
  const call = storage.getStore();
  if (call === undefined) return undefined;
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return {
    deadline: Number.isFinite(ms) ? new Date(ms) : undefined,
    // Lazy: under mTLS this reads the peer certificate, which only identity middleware needs.
    get authContext() {
      return call.getAuthContext();
    },
    get connection() {
      return call.getConnectionInfo();
    },
    get host() {
      return call.getHost();
    },
  };
}
