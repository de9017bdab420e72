import type { Socket } from 'node:net';
import { CANCEL } from './constants.js';
import type { HeaderBlock } from './hpack.js';
import type { ConnectionHandler, H2Options } from './options.js';
import { Session } from './session.js';
import type { H2Stream, StreamHandler } from './stream.js';

/**
 * One HTTP/2 connection (RFC 9113) over a socket (TCP or TLS), either role: frames in and out,
 * HPACK, the SETTINGS handshake, flow control, PING, GOAWAY and the streams' state machines,
 * with the limits of {@link H2Options}. Frames produced while one burst of input is handled are
 * written together, with one write.
 *
 * ```ts
 * const connection = new H2Connection(socket, 'server', {
 *   onStream(stream, headers, endStream) { stream.handler = myHandler; },
 *   onReady() {}, onGoaway() {}, onCapacity() {}, onClose() {},
 * });
 * ```
 */
export class H2Connection {
  readonly #session: Session;

  constructor(
    socket: Socket,
    role: 'client' | 'server',
    handler: ConnectionHandler,
    options: H2Options = {},
  ) {
    this.#session = new Session(this, socket, role, handler, options);
  }

  get role(): 'client' | 'server' {
    return this.#session.role;
  }

  get socket(): Socket {
    return this.#session.socket;
  }

  /** The peer's SETTINGS arrived. */
  get ready(): boolean {
    return this.#session.ready;
  }

  /** The connection is over (closed, failed or destroyed). */
  get closed(): boolean {
    return this.#session.closed;
  }

  /** Why the connection failed, if it did. */
  get failure(): string | undefined {
    return this.#session.failure;
  }

  /** Streams open or half-closed: what counts against SETTINGS_MAX_CONCURRENT_STREAMS (§5.1.2). */
  get activeStreams(): number {
    return this.#session.activeStreams;
  }

  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says). */
  get peerMaxStreams(): number {
    return this.#session.peerMaxStreams;
  }

  /** The peer's SETTINGS_MAX_HEADER_LIST_SIZE (unlimited until it says). */
  get peerMaxHeaderListSize(): number {
    return this.#session.peerMaxHeaderListSize;
  }

  /** New streams may be opened (client role): connected, no GOAWAY, under the peer's limit. */
  hasCapacity(): boolean {
    return this.#session.hasCapacity();
  }

  /**
   * Client role: opens a stream with these request headers. On a connection that is closed or
   * going away the stream is refused: `handler.onReset(stream, REFUSED_STREAM, reason)` runs on
   * the next tick.
   */
  request(headers: HeaderBlock, endStream: boolean, handler: StreamHandler): H2Stream {
    return this.#session.request(headers, endStream, handler);
  }

  /**
   * Sends a PING; `callback` runs on the ACK carrying its payload (RFC 9113 §6.7), or with an
   * error if the connection ends first.
   */
  ping(callback: (error?: string) => void): void {
    this.#session.ping(callback);
  }

  /**
   * Graceful close: GOAWAY so the peer opens no more streams, streams in flight finish, then the
   * socket closes. A server first announces the largest stream id, so that streams the client
   * already sent are still served, and — one PING round trip later — the last stream it
   * accepted (RFC 9113 §6.8); streams up to it are served to completion.
   */
  close(): void {
    this.#session.close();
  }

  /**
   * Drops the connection now: GOAWAY(`code`) goes out if it can, streams in flight are reset
   * with `reason` at once, and the socket closes.
   */
  destroy(reason: string, code = CANCEL): void {
    this.#session.destroy(reason, code);
  }
}
