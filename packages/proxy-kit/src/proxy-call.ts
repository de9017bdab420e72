import { encodeGrpcMessage, parseGrpcStatus, Status, statusFromHttp } from '@switchyard/core';
import { CANCEL, REFUSED_STREAM } from './h2/frames.js';
import { HeaderBlock } from './h2/hpack.js';
import type { H2Stream, StreamHandler } from './h2/stream.js';
import { resetCodeName, statusFromResetCode } from './reset-status.js';
import type { Service } from './service.js';
import type { UpstreamConnection } from './upstream-connection.js';

/** Request bytes kept for a transparent retry; a larger request is not replayed. */
const REPLAY_LIMIT = 64 * 1024;
/** Transparent retries of one call. */
const MAX_REPLAYS = 2;

/** Who decided a call's final status. */
export type CallOrigin =
  /** The upstream answered (`grpc-status` in its headers or trailers). */
  | 'upstream'
  /** The proxy did: the upstream failed at the transport level, or no upstream could be used. */
  | 'proxy'
  /** The client cancelled or went away. */
  | 'client';

/**
 * Told about the progress of a call it registered for with {@link ProxyCall.observe}, once per
 * registration: layers below the pipeline's entry register per attempt, and a call that an
 * upstream refused unprocessed ends that attempt (as UNAVAILABLE from the proxy) and starts
 * another.
 */
export interface CallObserver {
  /** The response began (its first DATA frame), or the attempt ended without one. */
  responseStarted?(call: ProxyCall): void;
  /** The attempt is over: {@link ProxyCall.status} and {@link ProxyCall.origin} are set. */
  finished?(call: ProxyCall): void;
}

/**
 * One proxied call: the client's stream, its request headers, and — once a connection is chosen
 * — the stream to the upstream. It relays between the two: headers, DATA and trailers pass
 * unchanged (no message is decoded, so any method and any compression), and each side's
 * flow-control window is given back only as the other side accepts the bytes, so a slow reader
 * slows the writer across the proxy and memory stays bounded by the windows.
 */
export class ProxyCall implements StreamHandler {
  readonly downstream: H2Stream;
  /** The client's request headers, forwarded as they are. */
  readonly headers: HeaderBlock;
  /** `host:port` of the upstream the call went to, once the balancer chose it. */
  target = '';
  /** When the call was sent upstream, as returned by the endpoint's load record. */
  startedAt = 0;
  /** The stream to the upstream and its connection, once the call is forwarded. */
  upstream: H2Stream | undefined = undefined;
  connection: UpstreamConnection | undefined = undefined;
  /** Response headers have been sent to the client. */
  responded = false;
  /** Final gRPC status; meaningful once finished. */
  status: Status = Status.UNKNOWN;
  origin: CallOrigin = 'upstream';
  /** The call is over (answered, failed or cancelled). */
  finished = false;
  #requestEnded: boolean;
  // Request data that arrived before the call had an upstream (it waited in admission). Copied:
  // a view would pin the socket's whole read buffer. Its window is given back once forwarded.
  #early: Buffer[] | undefined = undefined;
  #requestTrailers: HeaderBlock | undefined = undefined;
  #responseStarted = false;
  #observers: CallObserver[] | undefined = undefined;
  // Transparent retry (gRFC A6): a stream the upstream refused unprocessed (REFUSED_STREAM, or
  // beyond a GOAWAY's last stream id) goes through the pipeline again. Until the response
  // begins, copies of the request bytes sent are kept for that — up to REPLAY_LIMIT.
  readonly #entry: Service | undefined;
  #replayable = true;
  #replay: Buffer[] | undefined = undefined;
  #replayBytes = 0;
  #resend: Buffer[] | undefined = undefined;
  #attempts = 0;

  /** @param entry where the call enters the pipeline; a refused attempt is sent there again. */
  constructor(downstream: H2Stream, headers: HeaderBlock, endStream: boolean, entry?: Service) {
    this.downstream = downstream;
    this.headers = headers;
    this.#requestEnded = endStream;
    this.#entry = entry;
    downstream.handler = this;
  }

  /** The method path, e.g. `/pkg.Service/Method`. */
  get path(): string {
    return this.headers.get(':path') ?? '';
  }

  /** Registers for this call's progress events. */
  observe(observer: CallObserver): void {
    if (this.#observers === undefined) this.#observers = [observer];
    else this.#observers.push(observer);
  }

  /** Opens the upstream stream on `connection` and relays from now on. */
  forwardTo(connection: UpstreamConnection): void {
    if (this.finished) return;
    const h2 = connection.h2;
    if (this.headers.size > h2.peerMaxHeaderListSize) {
      this.fail(
        Status.RESOURCE_EXHAUSTED,
        `request metadata of ${this.headers.size} bytes exceeds upstream ${this.target}'s limit of ${h2.peerMaxHeaderListSize}`,
      );
      return;
    }
    this.connection = connection;
    const resend = this.#resend;
    const early = this.#early;
    const trailers = this.#requestTrailers;
    const endStream =
      this.#requestEnded && resend === undefined && early === undefined && trailers === undefined;
    const upstream = h2.request(this.headers, endStream, this);
    this.upstream = upstream;
    if (resend !== undefined) {
      // Sent once already: the client's window was given back then.
      this.#resend = undefined;
      const last = resend.length - 1;
      for (let i = 0; i <= last; i++) {
        const end =
          i === last && early === undefined && trailers === undefined && this.#requestEnded;
        upstream.sendData(resend[i]!, end);
        this.#retain(resend[i]!, false);
      }
    }
    if (early !== undefined) {
      this.#early = undefined;
      const last = early.length - 1;
      for (let i = 0; i <= last; i++) {
        const end = i === last && trailers === undefined && this.#requestEnded;
        upstream.sendData(early[i]!, end, this.downstream);
        this.#retain(early[i]!, false);
      }
    }
    if (trailers !== undefined) upstream.sendHeaders(trailers, true);
  }

  /** Keeps a copy of request bytes sent, while the attempt may still have to be replayed. */
  #retain(data: Buffer, copy: boolean): void {
    if (!this.#replayable || data.length === 0) return;
    this.#replayBytes += data.length;
    if (this.#replayBytes > REPLAY_LIMIT) {
      this.#replayable = false;
      this.#replay = undefined;
      return;
    }
    this.#replay ??= [];
    this.#replay.push(copy ? Buffer.from(data) : data);
  }

  /**
   * The upstream refused the stream without processing it: this attempt is over for its endpoint
   * (its load record and breaker learn so), and the call goes through the pipeline again.
   */
  #replayElsewhere(): void {
    this.#attempts++;
    this.status = Status.UNAVAILABLE;
    this.origin = 'proxy';
    this.responseStarted();
    const observers = this.#observers;
    this.#observers = undefined;
    if (observers !== undefined) for (const observer of observers) observer.finished?.(this);
    this.#responseStarted = false;
    this.upstream = undefined;
    this.connection = undefined;
    this.target = '';
    this.#resend = this.#replay;
    this.#replay = undefined;
    this.#replayBytes = 0;
    this.#entry!.call(this);
  }

  // ---- StreamHandler: events of both streams ----

  onHeaders(stream: H2Stream, headers: HeaderBlock, endStream: boolean): void {
    if (stream === this.downstream) {
      // Request trailers: unused by gRPC, forwarded for fidelity (and kept for a replay).
      this.#requestEnded = true;
      this.#requestTrailers = headers;
      if (headers.oversize) {
        this.fail(
          Status.RESOURCE_EXHAUSTED,
          `request trailers of ${headers.size} bytes exceed the proxy's limit`,
        );
        return;
      }
      this.upstream?.sendHeaders(headers, true);
      return;
    }
    if (this.finished) return;
    if (headers.oversize) {
      this.fail(
        Status.RESOURCE_EXHAUSTED,
        `response metadata of ${headers.size} bytes from upstream ${this.target} exceeds the proxy's limit`,
      );
      return;
    }
    if (this.responded) {
      this.downstream.sendHeaders(headers, true);
      this.finish(statusOf(headers), 'upstream');
      return;
    }
    this.responded = true;
    this.#replayable = false;
    this.#replay = undefined;
    this.downstream.sendHeaders(headers, endStream);
    // Trailers-Only: the status is in these headers; no body follows.
    if (endStream) this.finish(statusOf(headers), 'upstream');
  }

  onData(stream: H2Stream, data: Buffer, endStream: boolean): void {
    if (stream === this.downstream) {
      if (this.finished) {
        stream.consume(data.length);
        return;
      }
      if (endStream) this.#requestEnded = true;
      const upstream = this.upstream;
      if (upstream !== undefined) {
        upstream.sendData(data, endStream, stream);
        this.#retain(data, true);
      } else if (data.length > 0 || endStream) {
        this.#early ??= [];
        this.#early.push(Buffer.from(data));
      }
      return;
    }
    if (this.finished) {
      stream.consume(data.length);
      return;
    }
    this.responseStarted();
    if (data.length > 0) this.downstream.sendData(data, false, stream);
    if (endStream) {
      // PROTOCOL-HTTP2: a response ends with trailers; without them it has no status.
      this.fail(Status.INTERNAL, `upstream ${this.target} ended the response without trailers`);
    }
  }

  onReset(stream: H2Stream, code: number, connectionError: string | undefined): void {
    if (this.finished) return;
    if (stream === this.downstream) {
      // The client cancelled (RST_STREAM) or its connection went away: cancellation crosses
      // the proxy as RST_STREAM CANCEL (PROTOCOL-HTTP2).
      this.upstream?.reset(CANCEL);
      this.finish(Status.CANCELLED, 'client');
      return;
    }
    if (
      code === REFUSED_STREAM &&
      !this.responded &&
      this.#replayable &&
      this.#attempts < MAX_REPLAYS &&
      this.#entry !== undefined
    ) {
      this.#replayElsewhere();
      return;
    }
    if (connectionError !== undefined) {
      this.fail(Status.UNAVAILABLE, `upstream ${this.target}: ${connectionError}`);
    } else {
      this.fail(
        statusFromResetCode(code),
        `upstream ${this.target} reset the stream (${resetCodeName(code)})`,
      );
    }
  }

  // ---- Ending ----

  /** The upstream's first DATA frame arrived (or the call ended without one). */
  responseStarted(): void {
    if (this.#responseStarted) return;
    this.#responseStarted = true;
    const observers = this.#observers;
    if (observers === undefined) return;
    for (let i = 0; i < observers.length; i++) observers[i]!.responseStarted?.(this);
  }

  /** Records the final status and tells the observers. Idempotent. */
  finish(status: Status, origin: CallOrigin): void {
    if (this.finished) return;
    this.finished = true;
    this.status = status;
    this.origin = origin;
    this.responseStarted();
    this.#early = undefined;
    this.#replay = undefined;
    this.#resend = undefined;
    const observers = this.#observers;
    if (observers === undefined) return;
    for (let i = 0; i < observers.length; i++) observers[i]!.finished?.(this);
  }

  /**
   * Ends the call with a status the proxy produced: as a Trailers-Only response when nothing was
   * sent yet, else as trailers after what was sent. Cancels the upstream stream, if any.
   */
  fail(code: Status, message: string): void {
    if (this.finished) return;
    const upstream = this.upstream;
    if (upstream !== undefined && !upstream.closed) upstream.reset(CANCEL);
    const status = String(code);
    const grpcMessage = encodeGrpcMessage(message);
    if (this.responded) {
      this.downstream.sendHeaders(
        new HeaderBlock(['grpc-status', status, 'grpc-message', grpcMessage]),
        true,
      );
    } else {
      this.responded = true;
      this.downstream.sendHeaders(
        new HeaderBlock([
          ':status',
          '200',
          'content-type',
          'application/grpc',
          'grpc-status',
          status,
          'grpc-message',
          grpcMessage,
        ]),
        true,
      );
    }
    this.finish(code, 'proxy');
  }

  /** Answers with a plain HTTP response (for requests that are not gRPC at all). */
  reject(httpStatus: number, code: Status, message: string): void {
    if (this.finished) return;
    this.responded = true;
    this.downstream.sendHeaders(
      new HeaderBlock([
        ':status',
        String(httpStatus),
        'content-type',
        'text/plain; charset=utf-8',
        'grpc-status',
        String(code),
        'grpc-message',
        encodeGrpcMessage(message),
      ]),
      false,
    );
    this.downstream.sendData(Buffer.from(`${message}\n`), true);
    this.finish(code, 'proxy');
  }
}

/** A response's status: its `grpc-status`, or what its HTTP status means when it has none. */
function statusOf(headers: HeaderBlock): Status {
  const grpcStatus = headers.get('grpc-status');
  if (grpcStatus !== undefined) return parseGrpcStatus(grpcStatus)!;
  const httpStatus = Number(headers.get(':status') ?? 200);
  // A gRPC response whose status went missing: the client will see UNKNOWN.
  return httpStatus === 200 ? Status.UNKNOWN : statusFromHttp(httpStatus);
}
