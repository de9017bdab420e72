import type { H2Connection } from './connection.js';
import type { HeaderBlock } from './hpack.js';
import type { Session } from './session.js';

/**
 * The states of RFC 9113 §5.1 that a stream can be in here. The two `reserved` states belong to
 * server push, which is disabled (SETTINGS_ENABLE_PUSH 0, PUSH_PROMISE is a connection error).
 * A stream is `idle` only inside the connection, until its first HEADERS is sent or received.
 */
export type StreamState = 'idle' | 'open' | 'half-closed-local' | 'half-closed-remote' | 'closed';

/** Receives what the peer sends on one stream. */
export interface StreamHandler {
  /** Response headers, trailers (client role) or request trailers (server role). */
  onHeaders(stream: H2Stream, headers: HeaderBlock, endStream: boolean): void;
  /**
   * A DATA payload (possibly empty when it only carries END_STREAM): a view valid during the
   * call; keep a copy to hold it longer. It counts against the peer's window until
   * {@link H2Stream.consume} gives it back.
   */
  onData(stream: H2Stream, data: Buffer, endStream: boolean): void;
  /**
   * The stream ended abnormally: the peer reset it (`code`), the peer broke a rule on it and the
   * connection reset it (`code` is the one sent), or the connection failed or refused it
   * (`connectionError` says why: GOAWAY beyond its id, connection lost).
   */
  onReset(stream: H2Stream, code: number, connectionError: string | undefined): void;
}

/** One HTTP/2 stream, as its owner sees it. */
export interface H2Stream {
  readonly id: number;
  readonly connection: H2Connection;
  /** Where the stream is in its life (RFC 9113 §5.1). */
  readonly state: StreamState;
  /** `state === 'closed'`: nothing more will be sent or received. */
  readonly closed: boolean;
  /** Told what the peer sends; set it before the stream's first event. */
  handler: StreamHandler | undefined;
  /** Sends HEADERS (after any data still waiting for window). Ignored once the stream ended. */
  sendHeaders(headers: HeaderBlock, endStream: boolean): void;
  /**
   * Sends DATA as the windows allow; the rest waits, in order. `source` is the stream the bytes
   * came from: it gets its window back as they leave (at once if they are never sent), so a
   * slow receiver on this side holds back the sender on the other, end to end.
   */
  sendData(data: Buffer, endStream: boolean, source?: H2Stream): void;
  /** `bytes` of received DATA were handed on: the peer may send that much more. */
  consume(bytes: number): void;
  /** Aborts the stream with RST_STREAM(`code`); waiting data is dropped, its sources released. */
  reset(code: number): void;
  /** Sends what waits, as far as the windows allow now. The connection calls it on window. */
  flush(): void;
}

/** Data or trailers waiting for flow-control window or room in the output, in order. */
interface Pending {
  data: Buffer | undefined;
  headers: HeaderBlock | undefined;
  endStream: boolean;
  /** Whose window to give back once the data is sent. */
  source: H2Stream | undefined;
}

/**
 * The stream and its state machine (RFC 9113 §5.1). Every transition happens here, on the frame
 * that causes it being sent or received; the connection routes frames and owns the windows.
 * Package-private: owners see {@link H2Stream}.
 */
export class Stream implements H2Stream {
  readonly id: number;
  readonly #session: Session;
  handler: StreamHandler | undefined = undefined;
  state: StreamState = 'idle';
  /** What the peer still lets us send. */
  sendWindow: number;
  /** What we still let the peer send before we grant more. */
  recvWindow: number;
  /** Received bytes handed on but not yet granted back to the peer. */
  unacked = 0;
  /** Received bytes (padding included) not yet given back by {@link consume}. */
  unconsumed = 0;
  /** The owner ended its side (END_STREAM queued, or reset): nothing more may be queued. */
  #ended = false;
  #pending: Pending[] | undefined = undefined;
  // What the peer sent (§8.1): the first header block is the message's head, a later one its
  // trailers; a declared content-length must match the DATA received.
  headersReceived = false;
  expectedLength = -1;
  receivedLength = 0;

  constructor(session: Session, id: number, sendWindow: number, recvWindow: number) {
    this.#session = session;
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  get connection(): H2Connection {
    return this.#session.facade;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** We can still send frames on it (§5.1: open or half-closed (remote)). */
  get sendable(): boolean {
    return this.state === 'open' || this.state === 'half-closed-remote';
  }

  /** The peer can still send frames on it (§5.1: open or half-closed (local)). */
  get receivable(): boolean {
    return this.state === 'open' || this.state === 'half-closed-local';
  }

  sendHeaders(headers: HeaderBlock, endStream: boolean): void {
    if (this.#ended || !this.sendable) return;
    if (endStream) this.#ended = true;
    if (this.#pending !== undefined) {
      this.#pending.push({ data: undefined, headers, endStream, source: undefined });
      return;
    }
    this.#session.writeHeaders(this, headers, endStream);
  }

  sendData(data: Buffer, endStream: boolean, source?: H2Stream): void {
    if (this.#ended || !this.sendable) {
      source?.consume(data.length);
      return;
    }
    if (endStream) this.#ended = true;
    if (this.#pending !== undefined) {
      this.#pending.push({ data: retainable(data), headers: undefined, endStream, source });
      return;
    }
    const sent = this.#session.writeData(this, data, endStream);
    source?.consume(sent);
    if (sent === data.length) return;
    this.#pending = [
      { data: retainable(data.subarray(sent)), headers: undefined, endStream, source },
    ];
    this.#session.blocked(this);
  }

  flush(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    const session = this.#session;
    while (pending.length > 0 && this.sendable) {
      const next = pending[0]!;
      if (next.headers !== undefined) {
        session.writeHeaders(this, next.headers, next.endStream);
        pending.shift();
        continue;
      }
      const data = next.data!;
      const sent = session.writeData(this, data, next.endStream);
      next.source?.consume(sent);
      if (sent < data.length) {
        next.data = data.subarray(sent);
        session.blocked(this);
        return;
      }
      pending.shift();
    }
    this.#pending = undefined;
    // Closed while data waited (reset, or END_STREAM from a queued frame): release the rest.
    for (const p of pending) if (p.data !== undefined) p.source?.consume(p.data.length);
  }

  consume(bytes: number): void {
    if (bytes > 0) this.#session.consumed(this, bytes);
  }

  reset(code: number): void {
    if (this.state === 'closed') return;
    this.#ended = true;
    this.dropPending();
    this.#session.resetStream(this, code);
  }

  // ---- Transitions (§5.1), called by the connection as frames are sent and received ----

  /** HEADERS sent (client role) or received (server role) on an idle stream. */
  opened(endStreamSent: boolean, endStreamReceived: boolean): void {
    this.state = endStreamSent
      ? 'half-closed-local'
      : endStreamReceived
        ? 'half-closed-remote'
        : 'open';
    if (endStreamSent) this.#ended = true;
  }

  /** A frame with END_STREAM was written. Returns whether the stream is now closed. */
  sentEnd(): boolean {
    this.#ended = true;
    if (this.state === 'open') this.state = 'half-closed-local';
    else if (this.state === 'half-closed-remote') this.state = 'closed';
    return this.state === 'closed';
  }

  /** A frame with END_STREAM arrived. Returns whether the stream is now closed. */
  receivedEnd(): boolean {
    if (this.state === 'open') this.state = 'half-closed-remote';
    else if (this.state === 'half-closed-local') this.state = 'closed';
    return this.state === 'closed';
  }

  /** RST_STREAM sent or received, or the connection ended: closed, whatever the state was. */
  terminated(): void {
    this.state = 'closed';
    this.#ended = true;
    this.dropPending();
  }

  /** Releases data that will never be sent: its sources get their window back. */
  dropPending(): void {
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending === undefined) return;
    for (const p of pending) if (p.data !== undefined) p.source?.consume(p.data.length);
  }
}

/**
 * Data that must wait is copied when it is a small view of a much larger buffer (a socket read
 * chunk holding other frames): the wait may be long, and the view would keep the whole chunk.
 */
function retainable(data: Buffer): Buffer {
  const whole = data.buffer.byteLength;
  // Buffers from Node's small-allocation pool share an 8 KiB slab anyway: not worth a copy.
  return whole > Buffer.poolSize && data.length * 4 < whole ? Buffer.from(data) : data;
}
