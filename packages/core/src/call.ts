import type { PeerCertificate } from 'node:tls';
import type { Headers } from './headers.js';
import { Status } from './status.js';

/**
 * The one shape every Switchyard capability is written against, whatever carries the call: a
 * nice-grpc server or client (`@switchyard/nice-grpc`) or a call proxied as raw HTTP/2
 * (`@switchyard/proxy-kit`).
 *
 * After Finagle's `Filter` and connect-es's interceptors: an {@link Interceptor} receives the
 * call and the {@link Next} step, and completes with the call's {@link Outcome} — as tower's
 * `Service::call` returns its response future — so a capability that acts on the result (retry,
 * hedging, a deadline, metrics) simply awaits it, and one that refuses a call (authorization)
 * answers without calling `next`. Messages are not passed through the interceptors: the
 * transport relays them (a proxy without decoding them, nice-grpc as the objects it decoded), and
 * an interceptor that wants to see them registers a {@link MessageTap}.
 */

/** Which side of a call a {@link Call} is: served (`server`) or made (`client`). */
export type CallSide = 'server' | 'client';

/** Where a call's final status came from. */
export type StatusOrigin =
  /** The server that handled the call answered it (its handler, or an upstream's trailers). */
  | 'server'
  /** A Switchyard layer or the proxy decided it: a deadline, a policy, no ready endpoint. */
  | 'proxy'
  /** The connection or stream failed: reset, refused, lost, or a malformed response. */
  | 'transport'
  /** The caller cancelled or went away. */
  | 'client';

/** A gRPC method as every transport knows it: from its path. */
export interface CallMethod {
  /** `/package.Service/Method` */
  readonly path: string;
  /** `package.Service` */
  readonly service: string;
  /** `Method` */
  readonly name: string;
  /**
   * Whether requests (responses) are a stream; `undefined` where the transport cannot know, as
   * in a proxy that forwards any method without its definition.
   */
  readonly requestStream: boolean | undefined;
  readonly responseStream: boolean | undefined;
}

/** Who sent an inbound call, as proven by its transport (mTLS) or a trusted proxy header. */
export interface PeerIdentity {
  /** The identity itself: a SPIFFE ID, a DNS name or a certificate subject CN. */
  readonly id: string;
  /** Where {@link id} came from, in order of preference. */
  readonly source: 'spiffe' | 'dns' | 'cn' | 'header';
}

/**
 * One call — or, on the client side, one attempt of it — as an interceptor sees it. Plain data:
 * an interceptor that changes what the layers after it see passes them a copy,
 * `next({ ...call, deadline })`, and the same call can go to several attempts at once.
 */
export interface Call {
  readonly side: CallSide;
  readonly method: CallMethod;
  /**
   * The request headers. Changes made before `next` (client) or before the handler runs
   * (server) are what the peer (or the handler) sees; shared by the copies of one call, so an
   * attempt that needs headers of its own (retries, hedges) passes a copy.
   */
  readonly headers: Headers;
  /** When the call's time runs out, in epoch milliseconds; `undefined` for no deadline. */
  readonly deadline: number | undefined;
  /**
   * Aborts when the call is cancelled: by its caller, or by a layer (a deadline, a lost hedge);
   * `undefined` when nothing can cancel it (a client call whose caller passed no signal), so
   * that a layer has nothing to listen to.
   */
  readonly signal: AbortSignal | undefined;
  /** The verified caller of a server call, once an identity layer has established it. */
  readonly peer: PeerIdentity | undefined;
  /**
   * On the client side, the server call being served that this call is made for — the handler's
   * inbound call in an app, the downstream call in a proxy — whose deadline, cancellation, trace
   * context and caller it inherits; `undefined` for a call made outside any.
   */
  readonly inbound: Call | undefined;
  /** 1 for the first attempt of a client call (and for every server call). */
  readonly attempt: number;
  readonly transport: CallTransport;
}

/** What only the transport carrying a call can do or know, shared by all attempts of it. */
export interface CallTransport {
  /**
   * Whether another attempt could send the request again: the transport still holds every
   * request message sent so far (within its replay limit) and no response has reached the
   * caller yet.
   */
  readonly replayable: boolean;
  /**
   * Headers that calls made on behalf of a server call carry to the next hop: the trace context
   * in an app (picked from the request), every request header in a proxy. Layers replace
   * entries (a span's own `traceparent`) or drop them (an unverified identity header).
   */
  readonly forwardHeaders: Headers;
  /**
   * Asks the transport to keep the request messages it sends, up to `limitBytes` in all, so that
   * another attempt can send them again (grpc-go's `perRPCBufferSize`). Past the limit the copies
   * are dropped and the call stops being {@link replayable}. Without the request, a transport
   * keeps nothing.
   */
  retain(limitBytes: number): void;
  /** Registers a tap that sees every message of the call as it passes. */
  tap(tap: MessageTap): void;
  /** The remote end of the connection (`host:port`, `[v6]:port`), where the transport knows it. */
  readonly peerAddress: string | undefined;
  /**
   * The client certificate the TLS handshake verified, for a server call; `undefined` over
   * plaintext or without a verified certificate. Read on demand: parsing it costs.
   */
  peerCertificate(): PeerCertificate | undefined;
}

/** Which way a message travels. */
export type MessageDirection = 'request' | 'response';

/** Sees messages as the transport relays them, without changing them. */
export interface MessageTap {
  /**
   * One message. `size` is its encoded length where the transport has it (the proxy reads it
   * from the gRPC frame; nice-grpc has decoded objects and passes `undefined`); `message` is
   * whatever the transport holds, the decoded object or the frame's bytes.
   */
  message(direction: MessageDirection, size: number | undefined, message: unknown): void;
}

/** How a call (or one attempt of it) ended, as the layers below report it upwards. */
export interface Outcome {
  readonly status: Status;
  /** The status message (`grpc-message`, decoded). */
  readonly message: string;
  /** The trailers that came with the status; `undefined` when there were none. */
  readonly trailers: Headers | undefined;
  readonly origin: StatusOrigin;
  /**
   * A response (headers or a message) reached the caller before this outcome: the call is
   * committed to this attempt and cannot be sent again.
   */
  readonly committed: boolean;
  /**
   * The server provably never processed the call — it was refused (REFUSED_STREAM, a GOAWAY below
   * its stream id) or never left the client — so that any method may be sent again (gRFC A6
   * transparent retry).
   */
  readonly unprocessed?: boolean;
  /**
   * Another attempt of the same call answered first and this one was cancelled for it (a hedge
   * that lost): its outcome is not the call's.
   */
  readonly superseded?: boolean;
  /** The transport's own result, e.g. the unary response a nice-grpc call returned. */
  readonly value?: unknown;
  /** The error the transport or handler raised, when the status came from one. */
  readonly error?: unknown;
}

/** The rest of the pipeline after an interceptor: sends the call on and resolves with its outcome. */
export type Next = (call: Call) => Promise<Outcome>;

/**
 * A capability acting on calls: it may change the call it passes on, call `next` once, several
 * times (retries, hedges) or not at all (a refusal), and acts on the outcome. It never throws: a
 * failure it decides is an {@link Outcome}, so the transport has one way to learn how a call
 * ended.
 */
export type Interceptor = (call: Call, next: Next) => Promise<Outcome>;

/**
 * Composes interceptors into one, first outermost — the list reads top to bottom like the call's
 * path (`chain(deadline, retry)`: the deadline sees the call first and the retry's outcome last).
 */
export function chain(...interceptors: readonly Interceptor[]): Interceptor {
  if (interceptors.length === 1) return interceptors[0]!;
  return (call, next) => {
    const step = (index: number): Next =>
      index === interceptors.length ? next : (c) => interceptors[index]!(c, step(index + 1));
    return step(0)(call);
  };
}

/** `/package.Service/Method` → its parts; stream kinds as the transport knows them. */
export function callMethod(
  path: string,
  requestStream?: boolean,
  responseStream?: boolean,
): CallMethod {
  const slash = path.lastIndexOf('/');
  return {
    path,
    service: path.slice(path.startsWith('/') ? 1 : 0, Math.max(slash, 0)),
    name: path.slice(slash + 1),
    requestStream,
    responseStream,
  };
}

/** An outcome a layer decides itself: a refusal, an expired deadline, no endpoint. */
export function proxyOutcome(status: Status, message: string, committed = false): Outcome {
  return { status, message, trailers: undefined, origin: 'proxy', committed };
}

/** Whether an outcome is a success. */
export function succeeded(outcome: Outcome): boolean {
  return outcome.status === Status.OK;
}
