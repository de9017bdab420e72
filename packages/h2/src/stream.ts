import type { H2Connection } from './connection.js';
import type { HeaderBlock } from './hpack.js';

/** Receives what the peer sends on one stream. */
export interface StreamHandler {
  /** Response headers, trailers (client role) or request trailers (server role). */
  onHeaders(stream: H2Stream, headers: HeaderBlock, endStream: boolean): void;
  /**
   * A DATA payload (possibly empty when it only carries END_STREAM). It counts against the
   * peer's window until {@link H2Stream.consume} gives it back.
   */
  onData(stream: H2Stream, data: Buffer, endStream: boolean): void;
  /**
   * The stream ended abnormally: the peer reset it (`code`), or the connection failed or refused
   * it (`connectionError` set: GOAWAY beyond its id, connection lost).
   */
  onReset(stream: H2Stream, code: number, connectionError: string | undefined): void;
}

/** Data or trailers waiting for flow-control window, in order. */
interface Pending {
  data: Buffer | undefined;
  headers: HeaderBlock | undefined;
  endStream: boolean;
  /** Whose window to give back once the data is sent. */
  source: H2Stream | undefined;
}

/**
 * One HTTP/2 stream. Sending respects the peer's flow-control windows: what does not fit waits
 * here, in order, and the stream it came from gets its window back only once it is sent — so a
 * slow receiver on one side holds the sender on the other side back, end to end.
 */
export class H2Stream {
  readonly id: number;
  readonly connection: H2Connection;
  handler: StreamHandler | undefined = undefined;
  /** What the peer still lets us send. */
  sendWindow: number;
  /** What we still let the peer send before we grant more. */
  recvWindow: number;
  /** Received bytes handed on but not yet granted back to the peer. */
  unacked = 0;
  /** No more frames may be queued: END_STREAM (or RST_STREAM) is sent or waits in line. */
  localEnded = false;
  /** END_STREAM (or RST_STREAM) was written to the connection. */
  endWritten = false;
  /** The peer sent END_STREAM (or RST_STREAM). */
  remoteEnded = false;
  closed = false;
  /** Response or request HEADERS already received (the next HEADERS are trailers). */
  headersReceived = false;
  #pending: Pending[] | undefined = undefined;

  constructor(connection: H2Connection, id: number, sendWindow: number, recvWindow: number) {
    this.connection = connection;
    this.id = id;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Sends HEADERS (after any data still waiting for window). */
  sendHeaders(headers: HeaderBlock, endStream: boolean): void {
    if (this.localEnded) return;
    if (this.#pending !== undefined) {
      this.#pending.push({ data: undefined, headers, endStream, source: undefined });
      if (endStream) this.localEnded = true;
      return;
    }
    this.connection.writeHeaders(this, headers, endStream);
  }

  /**
   * Sends DATA as the windows allow; the rest waits. `source` is the stream the bytes came from:
   * it gets its window back as they leave.
   */
  sendData(data: Buffer, endStream: boolean, source?: H2Stream): void {
    if (this.localEnded) {
      source?.consume(data.length);
      return;
    }
    if (this.#pending === undefined) {
      const sent = this.connection.writeData(this, data, endStream);
      if (sent === data.length) {
        source?.consume(sent);
        return;
      }
      source?.consume(sent);
      this.#pending = [{ data: data.subarray(sent), headers: undefined, endStream, source }];
      this.connection.blocked(this);
    } else {
      this.#pending.push({ data, headers: undefined, endStream, source });
    }
    if (endStream) this.localEnded = true;
  }

  /** Sends what waits, as far as the windows allow now. Called by the connection. */
  flush(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    while (pending.length > 0) {
      const next = pending[0]!;
      if (next.headers !== undefined) {
        this.connection.writeHeaders(this, next.headers, next.endStream, true);
        pending.shift();
        continue;
      }
      const data = next.data!;
      const sent = this.connection.writeData(this, data, next.endStream, true);
      next.source?.consume(sent);
      if (sent < data.length) {
        next.data = data.subarray(sent);
        this.connection.blocked(this);
        return;
      }
      pending.shift();
    }
    this.#pending = undefined;
  }

  /** `bytes` of received DATA were handed on: the peer may send that much more. */
  consume(bytes: number): void {
    if (bytes > 0) this.connection.consumed(this, bytes);
  }

  /** Aborts the stream with RST_STREAM; waiting data is dropped (its sources are released). */
  reset(code: number): void {
    if (this.closed) return;
    this.dropPending();
    this.connection.writeReset(this, code);
  }

  /** Releases data that will never be sent. Called on reset and by the connection on close. */
  dropPending(): void {
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending === undefined) return;
    for (const p of pending) if (p.data !== undefined) p.source?.consume(p.data.length);
  }
}
