import type { Metadata, ServerInterceptingCallInterface, ServerInterceptor } from '@grpc/grpc-js';
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
 * state hands the call to the whole chain, once per call, without touching nice-grpc. On Node
 * 22 and later (AsyncContextFrame) entering it costs one context frame per call and nothing per
 * promise (bench/RESULTS.md, "call scope alone").
 */
export const inboundCallInterceptor: ServerInterceptor = (method, call) =>
  // grpc-js types an interceptor's result as its ServerInterceptingCall class, but only ever
  // uses it through ServerInterceptingCallInterface (getServerInterceptingCall chains them as
  // such, 1.10 to 1.14), which this class implements in full.
  new InboundInterceptingCall(
    call,
    method.path,
    method.requestStream,
  ) as unknown as ReturnType<ServerInterceptor>;

type Listener = Parameters<ServerInterceptingCallInterface['start']>[0];

/**
 * The interceptor's call: everything goes straight to grpc-js's own call. grpc-js's generic
 * `ServerInterceptingCall` would put a responder and a listener stage, with their bookkeeping,
 * on every message sent and received; this one only changes how the call starts.
 */
class InboundInterceptingCall implements ServerInterceptingCallInterface {
  constructor(
    private readonly call: ServerInterceptingCallInterface,
    private readonly path: string,
    private readonly requestStream: boolean,
  ) {}

  start(listener: Listener): void {
    const state: CallState = { call: this.call, path: this.path, served: undefined };
    this.call.start({
      onReceiveMetadata: this.requestStream
        ? (metadata) => callState.run(state, () => listener.onReceiveMetadata(metadata))
        : (metadata) => listener.onReceiveMetadata(metadata),
      onReceiveMessage: (message) => listener.onReceiveMessage(message),
      onReceiveHalfClose: this.requestStream
        ? () => listener.onReceiveHalfClose()
        : () => callState.run(state, () => listener.onReceiveHalfClose()),
      onCancel: () => listener.onCancel(),
    });
  }

  sendMetadata(metadata: Metadata): void {
    this.call.sendMetadata(metadata);
  }

  // biome-ignore lint/suspicious/noExplicitAny: grpc-js's own signature.
  sendMessage(message: any, callback: () => void): void {
    this.call.sendMessage(message, callback);
  }

  sendStatus(status: Parameters<ServerInterceptingCallInterface['sendStatus']>[0]): void {
    this.call.sendStatus(status);
  }

  startRead(): void {
    this.call.startRead();
  }

  getPeer(): string {
    return this.call.getPeer();
  }

  getDeadline(): ReturnType<ServerInterceptingCallInterface['getDeadline']> {
    return this.call.getDeadline();
  }

  getHost(): string {
    return this.call.getHost();
  }

  getAuthContext(): AuthContext {
    return this.call.getAuthContext();
  }

  getConnectionInfo(): ConnectionInfo {
    return this.call.getConnectionInfo();
  }

  getMetricsRecorder(): ReturnType<ServerInterceptingCallInterface['getMetricsRecorder']> {
    return this.call.getMetricsRecorder();
  }
}

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
