import {
  type Call,
  decodeGrpcMessage,
  type Outcome,
  parseGrpcStatus,
  proxyOutcome,
  Status,
  statusFromHttp,
} from '@switchyard/core';
import {
  CANCEL,
  errorCodeName,
  type H2Stream,
  HeaderBlock,
  REFUSED_STREAM,
  type StreamHandler,
} from '@switchyard/h2';
import { BlockHeaders } from './block-headers.js';
import { type ProxyCall, SUPERSEDED } from './proxy-call.js';
import { statusFromResetCode } from './reset-status.js';
import type { UpstreamConnection } from './upstream-connection.js';

/**
 * One attempt of a proxied call: one stream to one upstream. It sends what {@link ProxyCall}
 * hands it of the request, relays the response once it has committed the call, and ends with the
 * outcome the upstream gave — its status and trailers, or what its stream's failure means — for
 * the pipeline's layers to act on; the client's final status is written from there.
 */
export class UpstreamAttempt implements StreamHandler {
  readonly ended: Promise<Outcome>;
  readonly #call: ProxyCall;
  readonly #attempt: Call;
  readonly #connection: UpstreamConnection;
  readonly #onResponse: (() => void) | undefined;
  #stream: H2Stream | undefined = undefined;
  #resolve!: (outcome: Outcome) => void;
  #headersReceived = false;
  #committed = false;
  #over = false;
  readonly #abort = () => this.#cancelled(this.#attempt.signal?.reason);

  constructor(
    call: ProxyCall,
    attempt: Call,
    connection: UpstreamConnection,
    onResponse: (() => void) | undefined,
  ) {
    this.#call = call;
    this.#attempt = attempt;
    this.#connection = connection;
    this.#onResponse = onResponse;
    this.ended = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  /** Where the attempt went, `host:port`, for status messages. */
  get target(): string {
    return this.#connection.endpoint.address;
  }

  /** Opens the stream with the attempt's headers. */
  open(endStream: boolean): void {
    const { signal } = this.#attempt;
    if (signal?.aborted) {
      this.#cancelled(signal.reason);
      return;
    }
    const headers = headerBlockOf(this.#attempt);
    const h2 = this.#connection.h2;
    if (headers.size > h2.peerMaxHeaderListSize) {
      this.#settle(
        proxyOutcome(
          Status.RESOURCE_EXHAUSTED,
          `request metadata of ${headers.size} bytes exceeds upstream ${this.target}'s limit of ${h2.peerMaxHeaderListSize}`,
        ),
      );
      return;
    }
    this.#stream = h2.request(headers, endStream, this);
    signal?.addEventListener('abort', this.#abort);
  }

  sendRequest(data: Buffer, endStream: boolean, source: H2Stream | undefined): void {
    const stream = this.#stream;
    if (stream === undefined || this.#over) {
      source?.consume(data.length);
      return;
    }
    stream.sendData(data, endStream, source);
  }

  sendRequestTrailers(trailers: HeaderBlock): void {
    if (!this.#over) this.#stream?.sendHeaders(trailers, true);
  }

  /** Another attempt committed the call: this one is cancelled. */
  supersede(): void {
    if (this.#over) return;
    this.#stream?.reset(CANCEL);
    this.#settle(SUPERSEDED);
  }

  /** The call is over: the attempt is cancelled, if still running. */
  cancel(): void {
    if (this.#over) return;
    this.#stream?.reset(CANCEL);
    this.#settle(proxyOutcome(Status.CANCELLED, 'the call ended'));
  }

  // ---- StreamHandler: the upstream stream ----

  onHeaders(stream: H2Stream, headers: HeaderBlock, endStream: boolean): void {
    if (this.#over) return;
    if (headers.oversize) {
      this.#fail(
        Status.RESOURCE_EXHAUSTED,
        `response metadata of ${headers.size} bytes from upstream ${this.target} exceeds the proxy's limit`,
      );
      return;
    }
    if (this.#headersReceived) {
      // Trailers: the upstream's status, relayed by whoever answers the client.
      this.#settle(outcomeOf(headers, true));
      return;
    }
    this.#headersReceived = true;
    this.#onResponse?.();
    if (endStream) {
      // Trailers-Only: the status is in these headers, and nothing reached the client yet.
      this.#settle(outcomeOf(headers, false));
      return;
    }
    if (!this.#call.commit(this, headers)) {
      stream.reset(CANCEL);
      this.#settle(SUPERSEDED);
      return;
    }
    this.#committed = true;
  }

  onData(stream: H2Stream, data: Buffer, endStream: boolean): void {
    if (this.#over || !this.#committed) {
      stream.consume(data.length);
      return;
    }
    this.#call.relayResponse(data, stream);
    if (endStream) {
      // PROTOCOL-HTTP2: a response ends with trailers; without them it has no status.
      this.#fail(Status.INTERNAL, `upstream ${this.target} ended the response without trailers`);
    }
  }

  onReset(_stream: H2Stream, code: number, connectionError: string | undefined): void {
    if (this.#over) return;
    const refused = code === REFUSED_STREAM && !this.#headersReceived;
    this.#settle({
      status:
        connectionError !== undefined && !refused ? Status.UNAVAILABLE : statusFromResetCode(code),
      message:
        connectionError !== undefined
          ? `upstream ${this.target}: ${connectionError}`
          : `upstream ${this.target} reset the stream (${errorCodeName(code)})`,
      trailers: undefined,
      origin: 'transport',
      committed: this.#committed,
      // RFC 9113 §8.7: a refused stream was not processed, so any method may go again.
      unprocessed: refused,
    });
  }

  // ---- Ending ----

  #cancelled(reason: unknown): void {
    if (this.#over) return;
    this.#stream?.reset(CANCEL);
    const byClient = this.#call.served.signal?.aborted === true;
    this.#settle({
      ...proxyOutcome(
        Status.CANCELLED,
        byClient ? 'the client cancelled the call' : `cancelled: ${String(reason)}`,
        this.#committed,
      ),
      origin: byClient ? 'client' : 'proxy',
    });
  }

  #fail(status: Status, message: string): void {
    this.#stream?.reset(CANCEL);
    this.#settle({ ...proxyOutcome(status, message, this.#committed), origin: 'transport' });
  }

  #settle(outcome: Outcome): void {
    if (this.#over) return;
    this.#over = true;
    this.#attempt.signal?.removeEventListener('abort', this.#abort);
    this.#call.ended(this);
    // The balancer learns of a response that never began at the attempt's end.
    if (!this.#headersReceived) this.#onResponse?.();
    this.#resolve(outcome);
  }
}

/** The attempt's request headers as a block: the received one, unless a layer changed them. */
function headerBlockOf(attempt: Call): HeaderBlock {
  const headers = attempt.headers;
  if (headers instanceof BlockHeaders) return headers.block;
  const block = new HeaderBlock();
  for (const [name, value] of headers) {
    block.fields.push(name, value);
    block.size += name.length + value.length + 32;
  }
  return block;
}

/** The outcome an upstream's status block gives: its `grpc-status`, or its HTTP status's. */
function outcomeOf(headers: HeaderBlock, committed: boolean): Outcome {
  const grpcStatus = headers.get('grpc-status');
  let status: Status;
  if (grpcStatus !== undefined) status = parseGrpcStatus(grpcStatus)!;
  else {
    const httpStatus = Number(headers.get(':status') ?? 200);
    // A gRPC response whose status went missing: the client will see UNKNOWN.
    status = httpStatus === 200 ? Status.UNKNOWN : statusFromHttp(httpStatus);
  }
  const message = headers.get('grpc-message');
  return {
    status,
    message: message === undefined ? '' : decodeGrpcMessage(message),
    trailers: new BlockHeaders(headers),
    origin: 'server',
    committed,
  };
}
