import type { PeerCertificate } from 'node:tls';
import {
  type Call,
  type CallTransport,
  encodeGrpcMessage,
  GrpcTimeoutError,
  MessageBoundaries,
  type MessageDirection,
  type MessageTap,
  type Outcome,
  parseGrpcTimeout,
  proxyOutcome,
  Status,
} from '@switchyard/core';
import { type H2Stream, HeaderBlock, type StreamHandler } from '@switchyard/h2';
import { BlockHeaders } from './block-headers.js';
import { methodOf } from './methods.js';
import type { Service } from './service.js';
import { UpstreamAttempt } from './upstream-attempt.js';
import type { UpstreamConnection } from './upstream-connection.js';

/** What the proxy knows of the connection a call came in on. */
export interface InboundConnection {
  /** `host:port` of the client. */
  readonly peerAddress: string | undefined;
  /** The client certificate the TLS handshake verified, if any. */
  peerCertificate(): PeerCertificate | undefined;
}

/** One request chunk kept for attempts that have not sent it yet, or for a replay. */
interface KeptChunk {
  readonly data: Buffer;
  /** Its flow-control window was given back to the client already. */
  credited: boolean;
}

/**
 * One proxied call, as it came from the client: the client's stream and its request, and the
 * transport of every attempt made upstream for it (`CallTransport`).
 *
 * It relays between the client and the attempts. Request bytes go to the attempts as they come
 * (no message is decoded, so any method and any compression); each side's flow-control window is
 * given back only as the other side takes the bytes, so a slow reader slows the writer across the
 * proxy. Bytes that arrive before an attempt exists wait here, and while a retry layer asked for
 * it ({@link retain}) a copy of every request byte stays here for another attempt. The first
 * attempt to receive response headers commits the call: its response is relayed to the client,
 * the other attempts are cancelled. The final status is written once the pipeline's outcome is
 * known ({@link serve}), so that a layer can decide it (a retry, a deadline).
 */
export class ProxyCall implements StreamHandler, CallTransport {
  readonly downstream: H2Stream;
  /** The call as the pipeline's layers see it. */
  readonly served: Call;
  /** The route that took the call, once one did (for the access log). */
  routeName: string | undefined = undefined;
  /** DATA bytes received from the client and relayed to it, for the access log. */
  requestBytes = 0;
  responseBytes = 0;
  readonly #headers: BlockHeaders;
  readonly #connection: InboundConnection;
  readonly #cancelled = new AbortController();
  #requestEnded: boolean;
  #requestTrailers: HeaderBlock | undefined = undefined;
  #kept: KeptChunk[] = [];
  #keptBytes = 0;
  #retainLimit = 0;
  /** Every request byte sent upstream so far is still kept. */
  #allKept = true;
  readonly #attempts: UpstreamAttempt[] = [];
  /** The endpoints earlier attempts went to, so that another attempt can go elsewhere. */
  readonly #tried: string[] = [];
  #committed: UpstreamAttempt | undefined = undefined;
  #responded = false;
  #done = false;
  #taps: MessageTap[] | undefined = undefined;
  #sizeCheck: ((data: Buffer) => void) | undefined = undefined;
  #requestMessages: MessageBoundaries | undefined = undefined;
  #responseMessages: MessageBoundaries | undefined = undefined;

  constructor(
    downstream: H2Stream,
    headers: HeaderBlock,
    endStream: boolean,
    connection: InboundConnection,
  ) {
    this.downstream = downstream;
    this.#requestEnded = endStream;
    this.#connection = connection;
    this.#headers = new BlockHeaders(headers);
    downstream.handler = this;
    this.served = {
      side: 'server',
      method: methodOf(headers.get(':path') ?? ''),
      headers: this.#headers,
      deadline: undefined,
      signal: this.#cancelled.signal,
      peer: undefined,
      inbound: undefined,
      attempt: 1,
      transport: this,
    };
  }

  /** Endpoints this call's attempts went to so far, in order. */
  get triedEndpoints(): readonly string[] {
    return this.#tried;
  }

  /** The request headers as received. */
  get requestHeaders(): HeaderBlock {
    return this.#headers.block;
  }

  /**
   * Runs the call through `service` and answers the client with its outcome: trailers after a
   * relayed response, else a Trailers-Only response. A malformed `grpc-timeout` is refused before
   * any layer runs (INTERNAL, as grpc-go answers it).
   */
  serve(service: Service): void {
    // Reset by the client already: nothing to do, nothing to answer.
    if (this.#done) return;
    const timeout = this.#headers.get('grpc-timeout');
    if (timeout !== undefined) {
      try {
        (this.served as { deadline: number | undefined }).deadline =
          Date.now() + parseGrpcTimeout(timeout);
      } catch (error) {
        if (!(error instanceof GrpcTimeoutError)) throw error;
        this.#answer(proxyOutcome(Status.INTERNAL, `malformed grpc-timeout: ${error.message}`));
        return;
      }
    }
    service.call(this.served).then(
      (outcome) => this.#answer(outcome),
      (error: unknown) =>
        this.#answer(proxyOutcome(Status.INTERNAL, `proxy failure: ${String(error)}`)),
    );
  }

  // ---- CallTransport ----

  get replayable(): boolean {
    return this.#committed === undefined && this.#allKept;
  }

  get forwardHeaders(): BlockHeaders {
    // Everything the client sent goes upstream, as layers left it.
    return this.#headers;
  }

  get peerAddress(): string | undefined {
    return this.#connection.peerAddress;
  }

  peerCertificate(): PeerCertificate | undefined {
    return this.#connection.peerCertificate();
  }

  retain(limitBytes: number): void {
    if (limitBytes > this.#retainLimit) this.#retainLimit = limitBytes;
    if (this.#keptBytes > this.#retainLimit) this.#stopKeeping();
  }

  tap(tap: MessageTap): void {
    if (this.#taps === undefined) {
      this.#taps = [tap];
      this.#requestMessages = new MessageBoundaries();
      this.#responseMessages = new MessageBoundaries();
      // Request bytes read with the headers arrived before any layer ran; until an attempt
      // takes them, every one is still kept here.
      if (this.#tried.length === 0) for (const { data } of this.#kept) this.#count('request', data);
    } else {
      this.#taps.push(tap);
    }
  }

  /**
   * Calls `exceeded` (once) with the size of the first request message larger than `maxBytes`,
   * read from its 5-byte prefix — before its bytes arrive, and counting those that came before
   * this was asked (before any attempt, every request byte is still kept).
   */
  limitRequestMessages(maxBytes: number, exceeded: (size: number) => void): void {
    const boundaries = new MessageBoundaries();
    let tripped = false;
    const check = (data: Buffer) =>
      boundaries.push(data, (size) => {
        if (size > maxBytes && !tripped) {
          tripped = true;
          exceeded(size);
        }
      });
    this.#sizeCheck = check;
    if (this.#tried.length === 0) for (const { data } of this.#kept) check(data);
  }

  // ---- Attempts ----

  /** Sends `call` upstream on `connection` as a new attempt; resolves with its outcome. */
  attempt(call: Call, connection: UpstreamConnection, onResponse?: () => void): Promise<Outcome> {
    if (this.#done) return Promise.resolve(CLIENT_GONE);
    if (this.#committed !== undefined) return Promise.resolve(SUPERSEDED);
    const attempt = new UpstreamAttempt(this, call, connection, onResponse);
    this.#attempts.push(attempt);
    this.#tried.push(connection.endpoint.address);
    const kept = this.#kept;
    const trailers = this.#requestTrailers;
    attempt.open(this.#requestEnded && kept.length === 0 && trailers === undefined);
    for (let i = 0; i < kept.length; i++) {
      const chunk = kept[i]!;
      const end = i === kept.length - 1 && trailers === undefined && this.#requestEnded;
      attempt.sendRequest(chunk.data, end, chunk.credited ? undefined : this.downstream);
      chunk.credited = true;
    }
    if (trailers !== undefined) attempt.sendRequestTrailers(trailers);
    // Without a retry layer asking for them, sent bytes are not kept for another attempt.
    if (this.#retainLimit === 0 && kept.length > 0) this.#stopKeeping();
    return attempt.ended;
  }

  /** `attempt` received response headers: it commits the call unless another did first. */
  commit(attempt: UpstreamAttempt, headers: HeaderBlock): boolean {
    if (this.#committed !== undefined || this.#done) return false;
    this.#committed = attempt;
    this.#responded = true;
    this.#stopKeeping();
    for (const other of this.#attempts) if (other !== attempt) other.supersede();
    this.downstream.sendHeaders(headers, false);
    return true;
  }

  /** Response DATA of the committed attempt, relayed to the client. */
  relayResponse(data: Buffer, source: H2Stream): void {
    this.responseBytes += data.length;
    if (this.#responseMessages !== undefined && data.length > 0) this.#count('response', data);
    if (data.length > 0) this.downstream.sendData(data, false, source);
    else source.consume(0);
  }

  /** An attempt ended; it sends and receives nothing more. */
  ended(attempt: UpstreamAttempt): void {
    const index = this.#attempts.indexOf(attempt);
    if (index >= 0) this.#attempts.splice(index, 1);
  }

  // ---- StreamHandler: the client's stream ----

  onHeaders(_stream: H2Stream, headers: HeaderBlock): void {
    // Request trailers: unused by gRPC, forwarded for fidelity (and kept for a replay).
    this.#requestEnded = true;
    this.#requestTrailers = headers;
    if (headers.oversize) {
      this.#cancelled.abort();
      this.#answer(
        proxyOutcome(
          Status.RESOURCE_EXHAUSTED,
          `request trailers of ${headers.size} bytes exceed the proxy's limit`,
        ),
      );
      return;
    }
    for (const attempt of this.#attempts) attempt.sendRequestTrailers(headers);
  }

  onData(stream: H2Stream, data: Buffer, endStream: boolean): void {
    if (this.#done) {
      stream.consume(data.length);
      return;
    }
    if (endStream) this.#requestEnded = true;
    this.requestBytes += data.length;
    if (this.#sizeCheck !== undefined && data.length > 0) this.#sizeCheck(data);
    if (this.#requestMessages !== undefined && data.length > 0) this.#count('request', data);
    const attempts = this.#attempts;
    if (attempts.length === 0) {
      // Waiting in admission: kept, and credited once an attempt sends it.
      if (data.length > 0 || endStream) this.#keep(data, false);
      return;
    }
    if (data.length > 0) {
      if (this.#allKept && this.#keptBytes + data.length <= this.#retainLimit)
        this.#keep(data, true);
      else this.#stopKeeping();
    }
    // The first attempt's sending gives the client its window back; a hedge sends a copy.
    attempts[0]!.sendRequest(data, endStream, stream);
    for (let i = 1; i < attempts.length; i++) {
      attempts[i]!.sendRequest(Buffer.from(data), endStream, undefined);
    }
  }

  onReset(): void {
    // The client cancelled (RST_STREAM) or its connection went away: every attempt is
    // cancelled through the call's signal, and the upstream sees RST_STREAM CANCEL.
    if (this.#done) return;
    this.#done = true;
    this.#kept = [];
    this.#cancelled.abort();
  }

  // ---- Ending ----

  /** Answers the client with `outcome`, unless it is gone or was answered already. */
  #answer(outcome: Outcome): void {
    const wasDone = this.#done;
    this.#done = true;
    this.#kept = [];
    for (const attempt of [...this.#attempts]) attempt.cancel();
    if (wasDone || this.downstream.closed) return;
    this.downstream.sendHeaders(this.#finalHeaders(outcome), true);
  }

  /**
   * The block that ends the response: the upstream's own trailers (or Trailers-Only headers)
   * when the outcome is theirs, else the status the proxy decided.
   */
  #finalHeaders(outcome: Outcome): HeaderBlock {
    const { trailers } = outcome;
    if (trailers instanceof BlockHeaders && !trailers.changed) {
      const block = trailers.block;
      // Trailers-Only from upstream carries :status; after a relayed response it must not.
      if ((block.get(':status') !== undefined) === !this.#responded) return block;
    }
    const status = String(outcome.status);
    const message = encodeGrpcMessage(outcome.message);
    if (this.#responded) return new HeaderBlock(['grpc-status', status, 'grpc-message', message]);
    this.#responded = true;
    return new HeaderBlock([
      ':status',
      '200',
      'content-type',
      'application/grpc',
      'grpc-status',
      status,
      'grpc-message',
      message,
    ]);
  }

  /** Answers with a plain HTTP response, for requests that are not gRPC at all. */
  reject(httpStatus: number, code: Status, message: string): Outcome {
    if (!this.#done && !this.downstream.closed) {
      this.#done = true;
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
    }
    return { ...proxyOutcome(code, message), committed: true };
  }

  #keep(data: Buffer, credited: boolean): void {
    // Copied: a view would pin the socket's whole read buffer.
    this.#kept.push({ data: Buffer.from(data), credited });
    this.#keptBytes += data.length;
  }

  /**
   * Request bytes are sent on without a copy from now on: no later attempt can send the whole
   * request again. Bytes no attempt has sent yet stay: they are still the request.
   */
  #stopKeeping(): void {
    this.#allKept = false;
    const unsent = this.#kept.filter((chunk) => !chunk.credited);
    if (unsent.length === this.#kept.length) return;
    this.#kept = unsent;
    this.#keptBytes = unsent.reduce((bytes, chunk) => bytes + chunk.data.length, 0);
  }

  #count(direction: MessageDirection, data: Buffer): void {
    const taps = this.#taps!;
    const boundaries = direction === 'request' ? this.#requestMessages! : this.#responseMessages!;
    boundaries.push(data, (length) => {
      for (const tap of taps) tap.message(direction, length, undefined);
    });
  }
}

/** The outcome of an attempt started after the client went away. */
const CLIENT_GONE: Outcome = Object.freeze({
  ...proxyOutcome(Status.CANCELLED, 'the client cancelled the call'),
  origin: 'client' as const,
});

/** An attempt cancelled because another attempt of the same call answered first. */
export const SUPERSEDED: Outcome = Object.freeze({
  ...proxyOutcome(Status.CANCELLED, 'another attempt answered first'),
  superseded: true,
});
