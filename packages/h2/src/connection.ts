import type { Socket } from 'node:net';
import {
  CANCEL,
  COMPRESSION_ERROR,
  CONTINUATION,
  DATA,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ENHANCE_YOUR_CALM,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PADDED,
  FLAG_PRIORITY,
  FLOW_CONTROL_ERROR,
  FRAME_HEADER_SIZE,
  FRAME_SIZE_ERROR,
  GOAWAY,
  HEADERS,
  INTERNAL_ERROR,
  MAX_WINDOW,
  NO_ERROR,
  PING,
  PREFACE,
  PRIORITY,
  PROTOCOL_ERROR,
  PUSH_PROMISE,
  REFUSED_STREAM,
  RST_STREAM,
  SETTINGS,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_HEADER_TABLE_SIZE,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE,
  WINDOW_UPDATE,
} from './frames.js';
import { requestProblem, responseProblem, trailersProblem } from './header-validation.js';
import { CompressionError, type HeaderBlock, HpackDecoder, HpackEncoder } from './hpack.js';
import { H2Stream, type StreamHandler } from './stream.js';

/** Our side's settings and windows. */
export interface H2Options {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we allow the peer to open. Default 1000. */
  maxConcurrentStreams?: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE: what each stream may send us before we grant more. Default 1 MiB. */
  streamWindow?: number;
  /** Receive window of the whole connection. Default 16 MiB. */
  connectionWindow?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE, enforced on received blocks. Default 64 KiB. */
  maxHeaderListSize?: number;
}

/** What the owner of a connection is told. */
export interface ConnectionHandler {
  /** Server role: the peer opened a stream. Set `stream.handler` before returning. */
  onStream?(stream: H2Stream, headers: HeaderBlock, endStream: boolean): void;
  /** The peer's first SETTINGS arrived: the connection is usable. */
  onReady(): void;
  /** The peer sent GOAWAY: no new streams; those up to `lastStreamId` may finish. */
  onGoaway(code: number, lastStreamId: number): void;
  /** A stream we opened closed, or the peer raised its stream limit: there may be room now. */
  onCapacity(): void;
  /** The connection is gone; `error` says why if it failed. */
  onClose(error: string | undefined): void;
}

const SOCKET_WRITE_SLAB = 64 * 1024;
/** Client stream resets tolerated per second and connection (see `#countReset`). */
const MAX_RESETS_PER_SECOND = 1000;
// DATA payloads up to this size are copied next to their frame header (one write for many
// frames); larger ones are written as they are, without a copy.
const COPY_LIMIT = 2048;

/**
 * One HTTP/2 connection over a socket (TCP or TLS), either role: frames in and out, HPACK, the
 * SETTINGS handshake, flow control, PING, GOAWAY and stream bookkeeping. Frames produced while
 * handling one burst of input are written together, with one system call.
 */
export class H2Connection {
  readonly role: 'client' | 'server';
  readonly socket: Socket;
  readonly #handler: ConnectionHandler;
  readonly #streams = new Map<number, H2Stream>();
  readonly #decoder: HpackDecoder;
  readonly #encoder = new HpackEncoder();
  // Our settings.
  readonly #maxStreams: number;
  readonly #streamWindow: number;
  readonly #connectionWindow: number;
  // The peer's settings.
  peerMaxStreams = 0xffffffff;
  peerMaxHeaderListSize = Number.POSITIVE_INFINITY;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  /** The peer's SETTINGS arrived. */
  ready = false;
  #settingsSeen = false;
  // Flow control of the connection as a whole.
  #sendWindow = DEFAULT_WINDOW;
  #recvWindow = DEFAULT_WINDOW;
  #unacked = 0;
  #blocked: H2Stream[] = [];
  // Streams.
  /** Streams open that count against a concurrency limit (ours or the peer's). */
  activeStreams = 0;
  #nextStreamId: number;
  #lastPeerStreamId = 0;
  // Lifecycle.
  #goawaySent = false;
  #goawayReceived = false;
  #closing = false;
  closed = false;
  #failure: string | undefined;
  #pingCallback: ((error?: string) => void) | undefined;
  #drainTimer: NodeJS.Timeout | undefined;
  // Input.
  #prefacePending: boolean;
  #partial: Buffer | undefined;
  #partialFilled = 0;
  #headerBlock: { stream: number; flags: number; fragments: Buffer[]; size: number } | undefined;
  // Output.
  #slab = Buffer.allocUnsafeSlow(SOCKET_WRITE_SLAB);
  #slabPos = 0;
  #slabFlushed = 0;
  #chunks: Buffer[] = [];
  #flushScheduled = false;

  constructor(
    socket: Socket,
    role: 'client' | 'server',
    handler: ConnectionHandler,
    options: H2Options = {},
  ) {
    this.socket = socket;
    this.role = role;
    this.#handler = handler;
    this.#maxStreams = options.maxConcurrentStreams ?? 1000;
    this.#streamWindow = options.streamWindow ?? 1 << 20;
    this.#connectionWindow = options.connectionWindow ?? 16 << 20;
    const maxHeaderListSize = options.maxHeaderListSize ?? 64 << 10;
    this.#decoder = new HpackDecoder({ maxHeaderListSize });
    this.#nextStreamId = role === 'client' ? 1 : 2;
    this.#prefacePending = role === 'server';

    socket.on('data', (chunk: Buffer) => this.#onInput(chunk));
    socket.on('error', (error: Error) => {
      this.#failure ??= error.message || error.name;
    });
    socket.on('close', () => this.#onSocketClose());

    this.#maxHeaderListSize = maxHeaderListSize;
    // A client speaks first; a server answers the client's preface, so that what it sends to a
    // client that turns out not to speak HTTP/2 is a readable HTTP/1.1 answer, not frames.
    if (role === 'client') {
      this.#chunks.push(PREFACE);
      this.#sendPreface();
    }
  }

  readonly #maxHeaderListSize: number;

  /** Our SETTINGS and the connection window beyond the default. */
  #sendPreface(): void {
    const settings: [number, number][] = [
      [SETTINGS_MAX_CONCURRENT_STREAMS, this.#maxStreams],
      [SETTINGS_INITIAL_WINDOW_SIZE, this.#streamWindow],
      [SETTINGS_MAX_HEADER_LIST_SIZE, this.#maxHeaderListSize],
    ];
    if (this.role === 'client') settings.push([SETTINGS_ENABLE_PUSH, 0]);
    this.#writeSettings(settings);
    this.#grantConnectionWindow(this.#connectionWindow - DEFAULT_WINDOW);
    this.#scheduleFlush();
  }

  /** Why the connection failed, if it did. */
  get failure(): string | undefined {
    return this.#failure;
  }

  /** New streams may be opened (client role): connected, no GOAWAY, under the peer's limit. */
  hasCapacity(): boolean {
    return (
      this.ready &&
      !this.#goawayReceived &&
      !this.#closing &&
      this.activeStreams < this.peerMaxStreams &&
      this.#nextStreamId < MAX_WINDOW
    );
  }

  /** Client role: opens a stream with these request headers. */
  request(headers: HeaderBlock, endStream: boolean, handler: StreamHandler): H2Stream {
    const id = this.#nextStreamId;
    this.#nextStreamId += 2;
    const stream = new H2Stream(this, id, this.#peerInitialWindow, this.#streamWindow);
    stream.handler = handler;
    this.#streams.set(id, stream);
    this.activeStreams++;
    this.writeHeaders(stream, headers, endStream);
    return stream;
  }

  /** Sends a PING; `callback` runs on its ACK, or with an error if the connection dies first. */
  ping(callback: (error?: string) => void): void {
    if (this.closed) {
      callback(this.#failure ?? 'connection closed');
      return;
    }
    this.#pingCallback = callback;
    this.#frameHeader(8, PING, 0, 0);
    this.#slab.fill(0, this.#slabPos, this.#slabPos + 8);
    this.#slabPos += 8;
    this.#scheduleFlush();
  }

  /**
   * Graceful close: GOAWAY so the peer opens no more streams, streams in flight finish, then the
   * socket closes. A server first announces the last possible stream id, then — one PING round
   * trip later, when the client has seen it — the real last one (RFC 9113 §6.8), so that no
   * request in flight is refused.
   */
  close(): void {
    if (this.#closing || this.closed) return;
    this.#closing = true;
    if (this.role === 'server' && this.ready) {
      this.#writeGoaway(MAX_WINDOW, NO_ERROR);
      const timer = setTimeout(() => this.#finalGoaway(), 1000);
      this.ping(() => {
        clearTimeout(timer);
        this.#finalGoaway();
      });
    } else {
      this.#finalGoaway();
    }
  }

  /**
   * Drops the connection now: GOAWAY(`code`) goes out if it can, streams in flight are reset
   * with `reason` at once, and the socket closes.
   */
  destroy(reason: string, code = CANCEL): void {
    if (this.closed) return;
    this.#failure ??= reason;
    if (!this.#goawaySent && this.#settingsSeen)
      this.#writeGoaway(this.#lastPeerStreamId, code, reason);
    this.#flush();
    // end() lets the GOAWAY (or an HTTP/1.1 answer) reach the peer; a peer that does not close
    // its side is cut shortly after.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.#terminate();
  }

  // ---- Sending (used by H2Stream) ----

  /** Writes HEADERS (+ CONTINUATION) for `stream`. */
  writeHeaders(
    stream: H2Stream,
    headers: HeaderBlock,
    endStream: boolean,
    fromQueue = false,
  ): void {
    if (stream.endWritten || this.closed) return;
    if (endStream && !fromQueue) stream.localEnded = true;
    const block = this.#encoder.encode(headers);
    const max = this.#peerMaxFrameSize;
    let offset = 0;
    let type = HEADERS;
    let flags = endStream ? FLAG_END_STREAM : 0;
    do {
      const length = Math.min(max, block.length - offset);
      const last = offset + length >= block.length;
      this.#frameHeader(length, type, last ? flags | FLAG_END_HEADERS : flags, stream.id);
      this.#copy(block, offset, length);
      offset += length;
      type = CONTINUATION;
      flags = 0;
    } while (offset < block.length);
    if (endStream) this.#endWritten(stream);
    this.#scheduleFlush();
  }

  /**
   * Writes as much of `data` as the stream and connection windows allow; returns how many bytes
   * went out. END_STREAM is set only if all of it did.
   */
  writeData(stream: H2Stream, data: Buffer, endStream: boolean, fromQueue = false): number {
    if (stream.endWritten || this.closed) return data.length;
    let allowed = Math.min(data.length, stream.sendWindow, this.#sendWindow);
    if (allowed < 0) allowed = 0;
    const max = this.#peerMaxFrameSize;
    let offset = 0;
    while (offset < allowed) {
      const length = Math.min(max, allowed - offset);
      const last = offset + length === data.length;
      this.#frameHeader(length, DATA, last && endStream ? FLAG_END_STREAM : 0, stream.id);
      if (length <= COPY_LIMIT) this.#copy(data, offset, length);
      else this.#reference(data.subarray(offset, offset + length));
      offset += length;
    }
    stream.sendWindow -= allowed;
    this.#sendWindow -= allowed;
    if (allowed === data.length && endStream) {
      if (data.length === 0) this.#frameHeader(0, DATA, FLAG_END_STREAM, stream.id);
      if (!fromQueue) stream.localEnded = true;
      this.#endWritten(stream);
    }
    this.#scheduleFlush();
    return allowed;
  }

  /** Writes RST_STREAM and forgets the stream. */
  writeReset(stream: H2Stream, code: number): void {
    if (stream.closed) return;
    stream.localEnded = true;
    stream.endWritten = true;
    if (!this.closed) {
      this.#frameHeader(4, RST_STREAM, 0, stream.id);
      this.#slab.writeUInt32BE(code, this.#slabPos);
      this.#slabPos += 4;
      this.#scheduleFlush();
    }
    this.#closeStream(stream);
  }

  /** `stream` waits for window: flush it when window arrives. */
  blocked(stream: H2Stream): void {
    if (!this.#blocked.includes(stream)) this.#blocked.push(stream);
  }

  /** Bytes received on `stream` were handed on: grant them back (batched). */
  consumed(stream: H2Stream, bytes: number): void {
    if (this.closed) return;
    this.#unacked += bytes;
    if (this.#unacked >= this.#connectionWindow >>> 2) {
      this.#grantConnectionWindow(this.#unacked);
      this.#unacked = 0;
    }
    if (stream.closed || stream.remoteEnded) return;
    stream.unacked += bytes;
    if (stream.unacked >= this.#streamWindow >>> 2) {
      this.#frameHeader(4, WINDOW_UPDATE, 0, stream.id);
      this.#slab.writeUInt32BE(stream.unacked, this.#slabPos);
      this.#slabPos += 4;
      stream.recvWindow += stream.unacked;
      stream.unacked = 0;
      this.#scheduleFlush();
    }
  }

  // ---- Output ----

  #reserve(bytes: number): void {
    if (this.#slabPos + bytes <= this.#slab.length) return;
    this.#pushSlab();
    this.#slab = Buffer.allocUnsafeSlow(Math.max(SOCKET_WRITE_SLAB, bytes));
    this.#slabPos = 0;
    this.#slabFlushed = 0;
  }

  #pushSlab(): void {
    if (this.#slabPos > this.#slabFlushed) {
      this.#chunks.push(this.#slab.subarray(this.#slabFlushed, this.#slabPos));
      this.#slabFlushed = this.#slabPos;
    }
  }

  #frameHeader(length: number, type: number, flags: number, streamId: number): void {
    this.#reserve(FRAME_HEADER_SIZE + (length <= COPY_LIMIT ? length : 0));
    const slab = this.#slab;
    let p = this.#slabPos;
    slab[p++] = length >>> 16;
    slab[p++] = (length >>> 8) & 0xff;
    slab[p++] = length & 0xff;
    slab[p++] = type;
    slab[p++] = flags;
    slab.writeUInt32BE(streamId, p);
    this.#slabPos = p + 4;
  }

  #copy(source: Buffer, offset: number, length: number): void {
    this.#reserve(length);
    source.copy(this.#slab, this.#slabPos, offset, offset + length);
    this.#slabPos += length;
  }

  #reference(data: Buffer): void {
    this.#pushSlab();
    this.#chunks.push(data);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(flushConnection, this);
  }

  /** Writes everything produced so far in one system call. */
  flushNow(): void {
    this.#flushScheduled = false;
    this.#flush();
  }

  #flush(): void {
    this.#pushSlab();
    const chunks = this.#chunks;
    if (chunks.length === 0) return;
    this.#chunks = [];
    const socket = this.socket;
    if (socket.destroyed) return;
    if (chunks.length === 1) {
      socket.write(chunks[0]!);
      return;
    }
    socket.cork();
    for (const chunk of chunks) socket.write(chunk);
    socket.uncork();
  }

  // ---- Input ----

  #onInput(chunk: Buffer): void {
    try {
      this.#consumeInput(chunk);
    } catch (error) {
      if (error instanceof ConnectionError) {
        this.destroy(error.message, error.code);
      } else {
        // A bug must cost one connection, never the process.
        this.destroy(`internal error: ${(error as Error).message}`, INTERNAL_ERROR);
      }
    }
  }

  #consumeInput(chunk: Buffer): void {
    let pos = 0;
    // Complete a frame (or the preface) that began in an earlier chunk.
    while (this.#partial !== undefined) {
      if (pos >= chunk.length) return;
      const partial = this.#partial;
      const take = Math.min(partial.length - this.#partialFilled, chunk.length - pos);
      chunk.copy(partial, this.#partialFilled, pos, pos + take);
      this.#partialFilled += take;
      pos += take;
      if (this.#partialFilled < partial.length) return;
      this.#partial = undefined;
      if (this.#prefacePending) {
        this.#checkPreface(partial, 0);
        continue;
      }
      const length = partial.readUIntBE(0, 3);
      if (partial.length === FRAME_HEADER_SIZE && length > 0) {
        // Only the frame header was held; now the payload's size is known.
        this.#checkFrameSize(length);
        const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + length);
        partial.copy(frame, 0);
        this.#partial = frame;
        this.#partialFilled = FRAME_HEADER_SIZE;
        continue;
      }
      this.#frame(partial, 0, length);
    }
    if (this.#prefacePending) {
      if (chunk.length - pos < PREFACE.length) {
        this.#hold(chunk, pos, PREFACE.length);
        return;
      }
      this.#checkPreface(chunk, pos);
      pos += PREFACE.length;
    }
    while (!this.closed) {
      const remaining = chunk.length - pos;
      if (remaining < FRAME_HEADER_SIZE) {
        if (remaining > 0) this.#hold(chunk, pos, FRAME_HEADER_SIZE);
        return;
      }
      const length = (chunk[pos]! << 16) | (chunk[pos + 1]! << 8) | chunk[pos + 2]!;
      this.#checkFrameSize(length);
      if (remaining < FRAME_HEADER_SIZE + length) {
        this.#hold(chunk, pos, FRAME_HEADER_SIZE + length);
        return;
      }
      this.#frame(chunk, pos, length);
      pos += FRAME_HEADER_SIZE + length;
    }
  }

  /** Keeps the start of an incomplete frame (or preface), in a buffer of its full size. */
  #hold(buf: Buffer, pos: number, size: number): void {
    const partial = Buffer.allocUnsafe(size);
    this.#partialFilled = buf.copy(partial, 0, pos);
    this.#partial = partial;
  }

  #checkPreface(buf: Buffer, pos: number): void {
    if (PREFACE.compare(buf, pos, pos + PREFACE.length) !== 0) {
      this.#rejectNonHttp2(buf.subarray(pos));
      throw new ConnectionError(PROTOCOL_ERROR, 'the client did not send the HTTP/2 preface');
    }
    this.#prefacePending = false;
    this.#sendPreface();
  }

  /** An HTTP/1.x client gets an HTTP/1.1 answer it can read before the socket closes. */
  #rejectNonHttp2(buf: Buffer): void {
    const start = buf.toString('latin1', 0, Math.min(buf.length, 16));
    if (!/^[A-Z]{3,7} \S/.test(start)) return;
    const body = 'This is a gRPC (HTTP/2) endpoint; HTTP/1.x is not supported.\n';
    this.#chunks.push(
      Buffer.from(
        `HTTP/1.1 505 HTTP Version Not Supported\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        'latin1',
      ),
    );
  }

  #checkFrameSize(length: number): void {
    if (length > DEFAULT_MAX_FRAME_SIZE) {
      throw new ConnectionError(FRAME_SIZE_ERROR, `frame of ${length} bytes`);
    }
  }

  #frame(buf: Buffer, pos: number, length: number): void {
    const type = buf[pos + 3]!;
    const flags = buf[pos + 4]!;
    const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff;
    const start = pos + FRAME_HEADER_SIZE;
    if (this.#headerBlock !== undefined && type !== CONTINUATION) {
      throw new ConnectionError(PROTOCOL_ERROR, 'frame inside a header block');
    }
    if (!this.#settingsSeen && type !== SETTINGS) {
      throw new ConnectionError(PROTOCOL_ERROR, 'first frame is not SETTINGS');
    }
    switch (type) {
      case DATA:
        this.#onData(buf, start, length, flags, streamId);
        return;
      case HEADERS:
        this.#onHeaders(buf, start, length, flags, streamId);
        return;
      case CONTINUATION:
        this.#onContinuation(buf, start, length, flags, streamId);
        return;
      case PRIORITY:
        if (streamId === 0) throw new ConnectionError(PROTOCOL_ERROR, 'PRIORITY on stream 0');
        return;
      case RST_STREAM:
        this.#onReset(buf, start, length, streamId);
        return;
      case SETTINGS:
        this.#onSettings(buf, start, length, flags, streamId);
        return;
      case PUSH_PROMISE:
        throw new ConnectionError(PROTOCOL_ERROR, 'PUSH_PROMISE (push is disabled)');
      case PING:
        this.#onPing(buf, start, length, flags, streamId);
        return;
      case GOAWAY:
        this.#onGoaway(buf, start, length, streamId);
        return;
      case WINDOW_UPDATE:
        this.#onWindowUpdate(buf, start, length, streamId);
        return;
      default:
        return; // unknown frame types are ignored (§5.5)
    }
  }

  #onData(buf: Buffer, start: number, length: number, flags: number, streamId: number): void {
    if (streamId === 0) throw new ConnectionError(PROTOCOL_ERROR, 'DATA on stream 0');
    this.#recvWindow -= length;
    if (this.#recvWindow < 0)
      throw new ConnectionError(FLOW_CONTROL_ERROR, 'connection window exceeded');
    let end = start + length;
    if (flags & FLAG_PADDED) {
      const padding = length > 0 ? buf[start]! : 0;
      if (length === 0 || padding >= length)
        throw new ConnectionError(PROTOCOL_ERROR, 'bad padding');
      start++;
      end -= padding;
    }
    const stream = this.#streams.get(streamId);
    if (stream === undefined || stream.remoteEnded) {
      this.#releaseUnrouted(streamId, length);
      return;
    }
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) {
      this.#releaseUnrouted(streamId, length);
      stream.handler?.onReset(stream, FLOW_CONTROL_ERROR, undefined);
      stream.reset(FLOW_CONTROL_ERROR);
      return;
    }
    // Padding never reaches the receiver: give its window back at once.
    const padding = length - (end - start);
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if (endStream) this.#remoteEnded(stream);
    if (padding > 0) this.consumed(stream, padding);
    stream.handler?.onData(stream, buf.subarray(start, end), endStream);
    if (endStream) this.#maybeClose(stream);
  }

  /** DATA for a stream that is gone or unknown still spends connection window: give it back. */
  #releaseUnrouted(streamId: number, length: number): void {
    if (streamId > this.#highestStreamId()) {
      throw new ConnectionError(PROTOCOL_ERROR, `DATA on idle stream ${streamId}`);
    }
    this.#unacked += length;
    if (this.#unacked >= this.#connectionWindow >>> 2) {
      this.#grantConnectionWindow(this.#unacked);
      this.#unacked = 0;
    }
  }

  #highestStreamId(): number {
    return this.role === 'client' ? this.#nextStreamId - 2 : this.#lastPeerStreamId;
  }

  #onHeaders(buf: Buffer, start: number, length: number, flags: number, streamId: number): void {
    if (streamId === 0) throw new ConnectionError(PROTOCOL_ERROR, 'HEADERS on stream 0');
    let end = start + length;
    if (flags & FLAG_PADDED) {
      const padding = length > 0 ? buf[start]! : 0;
      start++;
      end -= padding;
    }
    if (flags & FLAG_PRIORITY) start += 5;
    if (start > end) throw new ConnectionError(PROTOCOL_ERROR, 'HEADERS padding exceeds payload');
    const fragment = buf.subarray(start, end);
    if (flags & FLAG_END_HEADERS) {
      this.#onHeaderBlock(streamId, flags, fragment);
    } else {
      // The fragment may be a view of a socket buffer that is about to be reused.
      this.#headerBlock = {
        stream: streamId,
        flags,
        fragments: [Buffer.from(fragment)],
        size: fragment.length,
      };
    }
  }

  #onContinuation(
    buf: Buffer,
    start: number,
    length: number,
    flags: number,
    streamId: number,
  ): void {
    const block = this.#headerBlock;
    if (block === undefined || block.stream !== streamId) {
      throw new ConnectionError(PROTOCOL_ERROR, 'CONTINUATION without a header block');
    }
    block.size += length;
    // Bounds memory against endless CONTINUATION (a known HTTP/2 flood).
    if (block.size > 1 << 20)
      throw new ConnectionError(ENHANCE_YOUR_CALM, 'header block larger than 1 MiB');
    block.fragments.push(Buffer.from(buf.subarray(start, start + length)));
    if (flags & FLAG_END_HEADERS) {
      this.#headerBlock = undefined;
      this.#onHeaderBlock(streamId, block.flags, Buffer.concat(block.fragments));
    }
  }

  #onHeaderBlock(streamId: number, flags: number, fragment: Buffer): void {
    let headers: HeaderBlock;
    try {
      headers = this.#decoder.decode(fragment);
    } catch (error) {
      if (error instanceof CompressionError)
        throw new ConnectionError(COMPRESSION_ERROR, error.message);
      throw error;
    }
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    const stream = this.#streams.get(streamId);
    if (stream !== undefined) {
      if (stream.remoteEnded) return;
      const first = !stream.headersReceived;
      // A 1xx response is informational; the real response follows.
      if (first && this.role === 'client' && headers.get(':status')?.charCodeAt(0) === 49) return;
      const problem =
        first && this.role === 'client' ? responseProblem(headers) : trailersProblem(headers);
      if (problem !== undefined || (!first && !endStream)) {
        stream.handler?.onReset(stream, PROTOCOL_ERROR, undefined);
        stream.reset(PROTOCOL_ERROR);
        return;
      }
      stream.headersReceived = true;
      if (endStream) this.#remoteEnded(stream);
      stream.handler?.onHeaders(stream, headers, endStream);
      if (endStream) this.#maybeClose(stream);
      return;
    }
    if (this.role === 'client' || streamId <= this.#lastPeerStreamId) return; // closed: ignore
    if ((streamId & 1) === 0)
      throw new ConnectionError(PROTOCOL_ERROR, `even stream id ${streamId}`);
    this.#lastPeerStreamId = streamId;
    if (this.#goawaySent) return; // §6.8: streams after GOAWAY are ignored
    const created = new H2Stream(this, streamId, this.#peerInitialWindow, this.#streamWindow);
    if (this.activeStreams >= this.#maxStreams) {
      this.writeReset(created, REFUSED_STREAM);
      return;
    }
    const problem = requestProblem(headers);
    if (problem !== undefined) {
      this.writeReset(created, PROTOCOL_ERROR);
      return;
    }
    this.#streams.set(streamId, created);
    this.activeStreams++;
    created.headersReceived = true;
    if (endStream) created.remoteEnded = true;
    this.#handler.onStream?.(created, headers, endStream);
  }

  #onReset(buf: Buffer, start: number, length: number, streamId: number): void {
    if (length !== 4) throw new ConnectionError(FRAME_SIZE_ERROR, 'RST_STREAM length');
    if (streamId === 0) throw new ConnectionError(PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    const stream = this.#streams.get(streamId);
    if (stream === undefined) {
      if (streamId > this.#highestStreamId()) {
        throw new ConnectionError(PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
      }
      return;
    }
    const code = buf.readUInt32BE(start);
    if (this.role === 'server') this.#countReset();
    stream.remoteEnded = true;
    stream.localEnded = true;
    stream.endWritten = true;
    stream.dropPending();
    this.#closeStream(stream);
    stream.handler?.onReset(stream, code, undefined);
  }

  // "Rapid reset" (CVE-2023-44487): a client that opens and cancels streams as fast as it can
  // makes the proxy open and cancel as many upstream; past a rate no real client needs, the
  // connection is closed with ENHANCE_YOUR_CALM.
  #resetWindowStart = 0;
  #resetsInWindow = 0;

  #countReset(): void {
    const now = performance.now();
    if (now - this.#resetWindowStart > 1000) {
      this.#resetWindowStart = now;
      this.#resetsInWindow = 0;
    }
    if (++this.#resetsInWindow > MAX_RESETS_PER_SECOND) {
      throw new ConnectionError(ENHANCE_YOUR_CALM, 'too many streams reset by the client');
    }
  }

  #onSettings(buf: Buffer, start: number, length: number, flags: number, streamId: number): void {
    if (streamId !== 0) throw new ConnectionError(PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & FLAG_ACK) {
      if (length !== 0) throw new ConnectionError(FRAME_SIZE_ERROR, 'SETTINGS ACK with payload');
      return;
    }
    if (length % 6 !== 0) throw new ConnectionError(FRAME_SIZE_ERROR, 'SETTINGS length');
    for (let p = start; p < start + length; p += 6) {
      const id = buf.readUInt16BE(p);
      const value = buf.readUInt32BE(p + 2);
      switch (id) {
        case SETTINGS_HEADER_TABLE_SIZE:
          this.#encoder.setMaxTableSize(value);
          break;
        case SETTINGS_ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(PROTOCOL_ERROR, 'ENABLE_PUSH not 0 or 1');
          break;
        case SETTINGS_MAX_CONCURRENT_STREAMS: {
          const raised = value > this.peerMaxStreams;
          this.peerMaxStreams = value;
          if (raised && this.ready) this.#handler.onCapacity();
          break;
        }
        case SETTINGS_INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW)
            throw new ConnectionError(FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE');
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          // §6.9.2: the change applies to every open stream's send window.
          for (const stream of this.#streams.values()) stream.sendWindow += delta;
          if (delta > 0) this.#flushAllBlocked();
          break;
        }
        case SETTINGS_MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > 16_777_215) {
            throw new ConnectionError(PROTOCOL_ERROR, 'MAX_FRAME_SIZE out of range');
          }
          this.#peerMaxFrameSize = value;
          break;
        case SETTINGS_MAX_HEADER_LIST_SIZE:
          this.peerMaxHeaderListSize = value;
          break;
        default:
          break; // unknown settings are ignored (§6.5.2)
      }
    }
    this.#frameHeader(0, SETTINGS, FLAG_ACK, 0);
    this.#scheduleFlush();
    this.#settingsSeen = true;
    if (!this.ready) {
      this.ready = true;
      this.#handler.onReady();
    }
  }

  #onPing(buf: Buffer, start: number, length: number, flags: number, streamId: number): void {
    if (length !== 8) throw new ConnectionError(FRAME_SIZE_ERROR, 'PING length');
    if (streamId !== 0) throw new ConnectionError(PROTOCOL_ERROR, 'PING on a stream');
    if (flags & FLAG_ACK) {
      const callback = this.#pingCallback;
      this.#pingCallback = undefined;
      callback?.();
      return;
    }
    this.#frameHeader(8, PING, FLAG_ACK, 0);
    this.#copy(buf, start, 8);
    this.#scheduleFlush();
  }

  #onGoaway(buf: Buffer, start: number, length: number, streamId: number): void {
    if (streamId !== 0) throw new ConnectionError(PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (length < 8) throw new ConnectionError(FRAME_SIZE_ERROR, 'GOAWAY length');
    const lastStreamId = buf.readUInt32BE(start) & 0x7fffffff;
    const code = buf.readUInt32BE(start + 4);
    this.#goawayReceived = true;
    if (code !== NO_ERROR) {
      const debug = buf.toString('latin1', start + 8, start + Math.min(length, 200));
      this.#failure ??= `GOAWAY ${code}${debug ? `: ${debug}` : ''}`;
    }
    // Streams we opened that the peer will never process: refused, safe to retry elsewhere.
    for (const stream of [...this.#streams.values()]) {
      if ((stream.id & 1) === (this.role === 'client' ? 1 : 0) && stream.id > lastStreamId) {
        stream.remoteEnded = true;
        stream.endWritten = true;
        stream.dropPending();
        this.#closeStream(stream);
        stream.handler?.onReset(stream, REFUSED_STREAM, 'the upstream refused the stream (GOAWAY)');
      }
    }
    this.#handler.onGoaway(code, lastStreamId);
    this.#maybeFinish();
  }

  #onWindowUpdate(buf: Buffer, start: number, length: number, streamId: number): void {
    if (length !== 4) throw new ConnectionError(FRAME_SIZE_ERROR, 'WINDOW_UPDATE length');
    const increment = buf.readUInt32BE(start) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW)
        throw new ConnectionError(FLOW_CONTROL_ERROR, 'window overflow');
      this.#flushAllBlocked();
      return;
    }
    const stream = this.#streams.get(streamId);
    if (stream === undefined) return;
    if (increment === 0 || stream.sendWindow + increment > MAX_WINDOW) {
      stream.handler?.onReset(
        stream,
        increment === 0 ? PROTOCOL_ERROR : FLOW_CONTROL_ERROR,
        undefined,
      );
      stream.reset(increment === 0 ? PROTOCOL_ERROR : FLOW_CONTROL_ERROR);
      return;
    }
    stream.sendWindow += increment;
    stream.flush();
  }

  #flushAllBlocked(): void {
    const blocked = this.#blocked;
    if (blocked.length === 0) return;
    this.#blocked = [];
    for (const stream of blocked) {
      if (!stream.closed) stream.flush();
    }
  }

  // ---- Stream lifecycle ----

  #remoteEnded(stream: H2Stream): void {
    stream.remoteEnded = true;
    // A client whose response ended stops sending: the server has no use for the rest.
    if (this.role === 'client' && !stream.endWritten) stream.reset(CANCEL);
  }

  #endWritten(stream: H2Stream): void {
    stream.endWritten = true;
    if (this.role === 'server' && !stream.remoteEnded) {
      // §8.1: the response is complete; the client may stop sending its request.
      stream.localEnded = true;
      this.writeReset(stream, NO_ERROR);
      return;
    }
    this.#maybeClose(stream);
  }

  #maybeClose(stream: H2Stream): void {
    if (stream.remoteEnded && stream.endWritten) this.#closeStream(stream);
  }

  #closeStream(stream: H2Stream): void {
    if (stream.closed) return;
    stream.closed = true;
    this.#streams.delete(stream.id);
    if (this.#blocked.length > 0) {
      const index = this.#blocked.indexOf(stream);
      if (index >= 0) this.#blocked.splice(index, 1);
    }
    this.activeStreams--;
    if (this.role === 'client') this.#handler.onCapacity();
    this.#maybeFinish();
  }

  /** After GOAWAY either way, the connection closes once its last stream has. */
  #maybeFinish(): void {
    if (this.#streams.size > 0 || this.closed) return;
    if (this.#closing && this.#goawaySent) this.#endSocket();
    else if (this.#goawayReceived) this.#endSocket();
  }

  #endSocket(): void {
    this.#flush();
    this.socket.end();
    // A peer that never closes its side must not keep the socket for ever.
    this.#drainTimer ??= setTimeout(() => this.socket.destroy(), 5_000);
    this.#drainTimer.unref();
  }

  #finalGoaway(): void {
    if (this.closed) return;
    this.#writeGoaway(this.#lastPeerStreamId, NO_ERROR);
    this.#maybeFinish();
  }

  #writeGoaway(lastStreamId: number, code: number, debug = ''): void {
    const debugBytes = Buffer.from(debug.slice(0, 200), 'latin1');
    this.#frameHeader(8 + debugBytes.length, GOAWAY, 0, 0);
    this.#slab.writeUInt32BE(lastStreamId, this.#slabPos);
    this.#slab.writeUInt32BE(code, this.#slabPos + 4);
    this.#slabPos += 8;
    this.#copy(debugBytes, 0, debugBytes.length);
    this.#goawaySent = true;
    this.#scheduleFlush();
  }

  #writeSettings(settings: [number, number][]): void {
    this.#frameHeader(settings.length * 6, SETTINGS, 0, 0);
    for (const [id, value] of settings) {
      this.#slab.writeUInt16BE(id, this.#slabPos);
      this.#slab.writeUInt32BE(value, this.#slabPos + 2);
      this.#slabPos += 6;
    }
  }

  #grantConnectionWindow(bytes: number): void {
    if (bytes <= 0) return;
    this.#frameHeader(4, WINDOW_UPDATE, 0, 0);
    this.#slab.writeUInt32BE(bytes, this.#slabPos);
    this.#slabPos += 4;
    this.#recvWindow += bytes;
    this.#scheduleFlush();
  }

  #onSocketClose(): void {
    clearTimeout(this.#drainTimer);
    this.#terminate();
  }

  /** The connection is over: every stream still open learns why, then the owner does. */
  #terminate(): void {
    if (this.closed) return;
    this.closed = true;
    const clean = this.#streams.size === 0 && (this.#goawayReceived || this.#goawaySent);
    const reason = clean ? undefined : (this.#failure ?? 'connection closed');
    if (reason !== undefined) this.#failure ??= reason;
    const callback = this.#pingCallback;
    this.#pingCallback = undefined;
    callback?.(reason ?? 'connection closed');
    for (const stream of [...this.#streams.values()]) {
      stream.closed = true;
      stream.dropPending();
      stream.handler?.onReset(stream, CANCEL, reason ?? 'connection closed');
    }
    this.#streams.clear();
    this.activeStreams = 0;
    this.#handler.onClose(reason);
  }
}

function flushConnection(connection: H2Connection): void {
  connection.flushNow();
}

/** A protocol violation that ends the connection with GOAWAY(`code`). */
class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
