import {
  type Metadata,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { type CallState, callState } from './call-state.js';

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

/**
 * grpc-js server interceptor (grpc-js ≥ 1.10, `new Server({ interceptors })`, which nice-grpc's
 * `createServer(options)` passes through) that makes the grpc-js call behind each nice-grpc
 * handler reachable from server middleware through {@link currentInboundCall}.
 *
 * grpc-js invokes the method handler from inside one listener callback — on half-close for
 * methods with a single request, on metadata for client-streaming and bidi ones — and nice-grpc
 * starts the middleware chain from that handler. Running only that callback inside the call's
 * state hands the call to the whole chain, once per call, without touching nice-grpc.
 */
export const inboundCallInterceptor: ServerInterceptor = (method, call) => {
  const state: CallState = { call, path: method.path, scope: undefined };
  const listener = method.requestStream
    ? {
        onReceiveMetadata: (metadata: Metadata, next: (metadata: Metadata) => void) =>
          callState.run(state, next, metadata),
      }
    : { onReceiveHalfClose: (next: () => void) => callState.run(state, next) };
  return new ServerInterceptingCall(call, { start: (next) => next(listener) });
};

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
  const call = callState.getStore()?.call;
  return call === undefined ? undefined : new InboundCallView(call);
}

/** Reads grpc-js's call only for what is asked: under mTLS `authContext` parses the peer certificate. */
class InboundCallView implements InboundCall {
  constructor(private readonly call: ServerInterceptingCallInterface) {}

  get deadline(): Date | undefined {
    const deadline = this.call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() : deadline;
    return Number.isFinite(ms) ? new Date(ms) : undefined;
  }

  get authContext(): AuthContext {
    return this.call.getAuthContext();
  }

  get connection(): ConnectionInfo {
    return this.call.getConnectionInfo();
  }

  get host(): string {
    return this.call.getHost();
  }
}
