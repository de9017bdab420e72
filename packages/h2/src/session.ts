import type { Socket } from 'node:net';
import type { H2Connection } from './connection.js';
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
  FRAME_SIZE_ERROR,
  GOAWAY,
  HEADERS,
  INTERNAL_ERROR,
  MAX_FRAME_SIZE_LIMIT,
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
  SETTINGS_TIMEOUT,
  STREAM_CLOSED,
  WINDOW_UPDATE,
} from './constants.js';
import { ConnectionError } from './errors.js';
import { FrameReader, type FrameSink } from './frame-reader.js';
import { FrameWriter } from './frame-writer.js';
import {
  declaredLength,
  requestProblem,
  responseProblem,
  trailersProblem,
} from './header-validation.js';
import { CompressionError, type HeaderBlock, HpackDecoder, HpackEncoder } from './hpack.js';
import type { ConnectionHandler, H2Options, Limits } from './options.js';
import { resolveOptions } from './options.js';
import { RateLimit } from './rate-limit.js';
import { Stream, type StreamHandler } from './stream.js';

// How a stream that is no longer live was closed, remembered for the frames that may race it
// (RFC 9113 §5.1 "closed").
const ENDED = 1; // END_STREAM both ways
const RESET_SENT = 2; // we sent RST_STREAM (or refused it): what follows is ignored
const RESET_RECEIVED = 3; // the peer sent RST_STREAM: what follows is a stream error
/**
 * Closed streams remembered. §5.1 lets an endpoint limit how long it tells frames that race a
 * reset from frames on a stream long gone; we remember the last 256 closed streams, which covers
 * a round trip at tens of thousands of streams per second.
 */
const CLOSED_REMEMBERED = 256;
/** After the first GOAWAY of a graceful close, the final one follows its PING's ACK or this. */
const GOAWAY_ROUND_TRIP_MS = 1000;
/** A peer that does not close its side after our GOAWAY is cut after this. */
const LINGER_MS = 1000;
const DRAIN_LINGER_MS = 5000;
// Payload prefix of our PINGs ("sy" + counter): ACKs are matched to what we sent (§6.7).
const PING_TAG = 0x7379_0000;

interface PendingPing {
  id: number;
  callback: (error?: string) => void;
}

interface HeaderBlockInProgress {
  streamId: number;
  flags: number;
  selfDependent: boolean;
  buffer: Buffer;
  size: number;
  frames: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The engine behind an {@link H2Connection}: frames in and out, HPACK, SETTINGS, flow control,
 * PING, GOAWAY, the routing of frames to streams by their state (RFC 9113 §5.1), and the limits
 * of {@link H2Options}. Package-private: its stream-facing writers are for {@link Stream} only.
 */
export class Session implements FrameSink {
  readonly role: 'client' | 'server';
  readonly socket: Socket;
  readonly facade: H2Connection;
  readonly #handler: ConnectionHandler;
  readonly #limits: Limits;
  readonly #writer: FrameWriter;
  readonly #reader: FrameReader;
  readonly #streams = new Map<number, Stream>();
  readonly #decoder: HpackDecoder;
  readonly #encoder = new HpackEncoder();
  // The peer's settings.
  peerMaxStreams = 0xffffffff;
  peerMaxHeaderListSize = Number.POSITIVE_INFINITY;
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  /** The peer's first SETTINGS arrived. */
  ready = false;
  /** Our SETTINGS went out (server: after the client's preface) / were acknowledged. */
  #settingsSent = false;
  #settingsAcked = false;
  /** Initial receive window of new streams: ours, or the default while it may still apply. */
  #recvInitial: number;
  // Flow control of the connection as a whole (§6.9.1).
  #sendWindow = DEFAULT_WINDOW;
  #recvWindow = DEFAULT_WINDOW;
  #unacked = 0;
  /** DATA received on streams that their owners have not handed on. */
  #buffered = 0;
  /** Of that, what arrived beyond `maxBufferedBytes`: its connection window is still withheld. */
  #withheld = 0;
  #blocked: Stream[] = [];
  // Stream ids (§5.1.1).
  #nextStreamId: number;
  /** Highest stream id the peer has used to open a stream, refused or not. */
  #lastPeerStreamId = 0;
  /** Highest stream id the peer opened that we accepted: the final GOAWAY's last-stream-id. */
  #lastAccepted = 0;
  #closedIds: Int32Array | undefined = undefined;
  #closedKinds: Uint8Array | undefined = undefined;
  #closedNext = 0;
  // Lifecycle.
  /** The last-stream-id of the GOAWAY we sent with a real limit (-1: none yet). */
  #goawayLastId = -1;
  #goawaySent = false;
  #goawayErrorSent = false;
  #goawayReceived = false;
  #closing = false;
  closed = false;
  failure: string | undefined = undefined;
  #pings: PendingPing[] = [];
  #pingCounter = 0;
  /** Second half of our PING payloads, so that an ACK is not matched by chance. */
  readonly #pingNonce = (Math.random() * 0x1_0000_0000) >>> 0;
  #drainPingId = -1;
  // Input.
  #block: HeaderBlockInProgress | undefined = undefined;
  readonly #pingRate: RateLimit;
  readonly #settingsRate: RateLimit;
  readonly #emptyRate: RateLimit;
  readonly #resetRate: RateLimit;
  #readPaused = false;
  // Output.
  #flushScheduled = false;
  /** A stream's DATA was held back because the output queue is full. */
  #outputFull = false;
  // Timers.
  #handshakeTimer: NodeJS.Timeout | undefined = undefined;
  #settingsTimer: NodeJS.Timeout | undefined = undefined;
  #idleTimer: NodeJS.Timeout | undefined = undefined;
  #idleSince = 0;
  #goawayTimer: NodeJS.Timeout | undefined = undefined;
  #lingerTimer: NodeJS.Timeout | undefined = undefined;

  constructor(
    facade: H2Connection,
    socket: Socket,
    role: 'client' | 'server',
    handler: ConnectionHandler,
    options: H2Options,
  ) {
    this.facade = facade;
    this.socket = socket;
    this.role = role;
    this.#handler = handler;
    const limits = resolveOptions(options, role);
    this.#limits = limits;
    this.#decoder = new HpackDecoder({ maxHeaderListSize: limits.maxHeaderListSize });
    this.#recvInitial = Math.max(limits.streamWindow, DEFAULT_WINDOW);
    this.#nextStreamId = role === 'client' ? 1 : 2;
    this.#pingRate = new RateLimit(limits.maxPingsPerSecond);
    this.#settingsRate = new RateLimit(limits.maxSettingsPerSecond);
    this.#emptyRate = new RateLimit(limits.maxEmptyFramesPerSecond);
    this.#resetRate = new RateLimit(limits.maxResetsPerSecond);
    this.#writer = new FrameWriter(socket);
    this.#reader = new FrameReader(this, role === 'server');

    // Frames are written in bursts already; Nagle's algorithm would only delay each burst's
    // answer by the peer's delayed ACK.
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onInput(chunk));
    socket.on('error', (error: Error) => {
      this.failure ??= error.message || error.name;
    });
    socket.on('close', () => {
      clearTimeout(this.#lingerTimer);
      this.#terminate();
    });
    socket.on('drain', () => this.#onDrain());

    if (limits.handshakeTimeoutMs > 0) {
      this.#handshakeTimer = setTimeout(() => {
        this.#connectionError(
          `no HTTP/2 ${role === 'server' ? 'preface and ' : ''}SETTINGS within ${limits.handshakeTimeoutMs} ms`,
          PROTOCOL_ERROR,
        );
      }, limits.handshakeTimeoutMs);
      this.#handshakeTimer.unref();
    }
    this.#idleSince = performance.now();
    this.#armIdleTimer(limits.idleTimeoutMs);
    // A client speaks first; a server answers the client's preface, so that what it sends to a
    // client that turns out not to speak HTTP/2 is a readable HTTP/1.1 answer, not frames.
    if (role === 'client') {
      this.#writer.raw(PREFACE);
      this.#sendSettings();
    }
  }

  // ---- Owner-facing ----

  /** New streams may be opened (client role): connected, no GOAWAY, under the peer's limit. */
  hasCapacity(): boolean {
    return (
      this.ready &&
      !this.#goawayReceived &&
      !this.#closing &&
      !this.closed &&
      this.#streams.size < this.peerMaxStreams &&
      this.#nextStreamId < MAX_WINDOW
    );
  }

  get activeStreams(): number {
    return this.#streams.size;
  }

  request(headers: HeaderBlock, endStream: boolean, handler: StreamHandler): Stream {
    const id = this.#nextStreamId;
    const stream = new Stream(this, id, this.#peerInitialWindow, this.#recvInitial);
    stream.handler = handler;
    if (this.closed || this.#goawayReceived || id >= MAX_WINDOW) {
      stream.terminated();
      const reason = this.closed
        ? (this.failure ?? 'connection closed')
        : 'the connection is going away';
      process.nextTick(() => handler.onReset(stream, REFUSED_STREAM, reason));
      return stream;
    }
    this.#nextStreamId += 2;
    // §8.1.1: a response to HEAD has no content whatever its content-length says.
    if (headers.get(':method') === 'HEAD') stream.expectedLength = -3;
    this.#streams.set(id, stream);
    this.#active();
    stream.opened(endStream, false);
    this.#writer.headers(id, this.#encoder.encode(headers), endStream, this.#peerMaxFrameSize);
    this.#scheduleFlush();
    return stream;
  }

  ping(callback: (error?: string) => void): void {
    if (this.closed) {
      callback(this.failure ?? 'connection closed');
      return;
    }
    this.#pings.push({ id: this.#sendPing(), callback });
  }

  close(): void {
    if (this.#closing || this.closed) return;
    this.#closing = true;
    if (this.role === 'server' && this.#settingsSent) {
      // §6.8: the first GOAWAY announces the largest stream id, so that streams already on
      // their way are still served; one PING round trip later — when the client has seen it —
      // the final GOAWAY names the last stream we accepted.
      this.#writer.goaway(MAX_WINDOW, NO_ERROR, '');
      this.#goawaySent = true;
      this.#goawayTimer = setTimeout(() => this.#finalGoaway(), GOAWAY_ROUND_TRIP_MS);
      this.#goawayTimer.unref();
      this.#drainPingId = this.#sendPing();
    } else {
      this.#finalGoaway();
    }
  }

  /**
   * The owner drops the connection. GOAWAY(`code`) goes out only if no GOAWAY did: after a
   * graceful close's GOAWAY(NO_ERROR), streams cut now end as on a lost connection, which peers
   * treat as retryable, not with `code`.
   */
  destroy(reason: string, code = CANCEL): void {
    this.#abort(reason, code, !this.#goawaySent);
  }

  /** The peer broke a rule or a limit (§5.4.1): GOAWAY(`code`) says which, even after a graceful one. */
  #connectionError(reason: string, code: number): void {
    this.#abort(reason, code, !this.#goawayErrorSent);
  }

  #abort(reason: string, code: number, sendGoaway: boolean): void {
    if (this.closed) return;
    this.failure ??= reason;
    if (this.#settingsSent && sendGoaway) {
      // The last-stream-id never grows from one GOAWAY to the next (§6.8).
      const lastId =
        this.#goawayLastId >= 0
          ? Math.min(this.#goawayLastId, this.#lastAccepted)
          : this.#lastAccepted;
      this.#writer.goaway(lastId, code, reason);
      this.#goawaySent = true;
      this.#goawayErrorSent = true;
    }
    this.#writer.flush();
    // end() lets the GOAWAY (or an HTTP/1.1 answer) reach the peer; a peer that does not close
    // its side is cut shortly after.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
    this.#terminate(reason);
  }

  // ---- Stream-facing writers (called by Stream only) ----

  writeHeaders(stream: Stream, headers: HeaderBlock, endStream: boolean): void {
    if (!stream.sendable || this.closed) return;
    this.#writer.headers(
      stream.id,
      this.#encoder.encode(headers),
      endStream,
      this.#peerMaxFrameSize,
    );
    this.#scheduleFlush();
    if (endStream) this.#sentEnd(stream);
  }

  /**
   * Writes as much of `data` as the stream's and the connection's windows and the output queue
   * allow; returns how many bytes went out. END_STREAM is set only if all of it did.
   */
  writeData(stream: Stream, data: Buffer, endStream: boolean): number {
    if (!stream.sendable || this.closed) return data.length;
    const length = data.length;
    let allowed = Math.min(length, stream.sendWindow, this.#sendWindow);
    const room = this.#limits.maxQueuedOutputBytes - this.#writer.queued;
    if (room < allowed) {
      allowed = room;
      this.#outputFull = true;
    }
    if (allowed <= 0) {
      if (length > 0 || !endStream) return 0;
      allowed = 0;
    }
    const end = endStream && allowed === length;
    this.#writer.data(stream.id, data, allowed, end, this.#peerMaxFrameSize);
    stream.sendWindow -= allowed;
    this.#sendWindow -= allowed;
    this.#scheduleFlush();
    if (end) this.#sentEnd(stream);
    return allowed;
  }

  /** The owner reset `stream` (not counted as the peer's doing). */
  resetStream(stream: Stream, code: number): void {
    if (!this.closed) {
      this.#writer.rstStream(stream.id, code);
      this.#scheduleFlush();
    }
    stream.terminated();
    this.#forget(stream, RESET_SENT);
  }

  /** `stream` waits for window or output room: flush it when either arrives. */
  blocked(stream: Stream): void {
    if (!this.#blocked.includes(stream)) this.#blocked.push(stream);
  }

  /** Bytes received on `stream` were handed on: grant them back, in batches. */
  consumed(stream: Stream, bytes: number): void {
    if (this.closed) return;
    // Never grant back more than was received: the peer's window would overflow (§6.9.1).
    if (bytes > stream.unconsumed) bytes = stream.unconsumed;
    if (bytes <= 0) return;
    this.#release(stream, bytes);
    if (!stream.receivable) return;
    stream.unacked += bytes;
    if (stream.unacked >= this.#limits.streamWindow >>> 2) {
      this.#writer.windowUpdate(stream.id, stream.unacked);
      stream.recvWindow += stream.unacked;
      stream.unacked = 0;
      this.#scheduleFlush();
    }
  }

  // ---- Output ----

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(flushSession, this);
  }

  /** Writes everything produced so far in one write; then looks at the socket's queue. */
  flush(): void {
    this.#flushScheduled = false;
    if (this.closed) return;
    this.#writer.flush();
    const queued = this.socket.writableLength;
    const limit = this.#limits.maxQueuedOutputBytes;
    if (queued > limit) {
      if (queued > 8 * limit) {
        this.#connectionError(`the peer does not read: ${queued} bytes queued`, ENHANCE_YOUR_CALM);
        return;
      }
      // Stop reading from a peer that does not read what we send (its ACKs included); 'drain'
      // resumes.
      // ('drain' is what resumes: only a socket that asked for it will send it.)
      if (!this.#readPaused && this.socket.writableNeedDrain) {
        this.#readPaused = true;
        this.socket.pause();
      }
    } else if (this.#outputFull) {
      this.#outputFull = false;
      this.#flushAllBlocked();
    }
  }

  #onDrain(): void {
    if (this.closed) return;
    if (this.#readPaused) {
      this.#readPaused = false;
      this.socket.resume();
    }
    if (this.#outputFull) {
      this.#outputFull = false;
      this.#flushAllBlocked();
    }
  }

  #flushAllBlocked(): void {
    const blocked = this.#blocked;
    if (blocked.length === 0) return;
    this.#blocked = [];
    for (const stream of blocked) if (stream.sendable) stream.flush();
  }

  #sendSettings(): void {
    const limits = this.#limits;
    const settings: [number, number][] = [
      [SETTINGS_MAX_CONCURRENT_STREAMS, limits.maxConcurrentStreams],
      [SETTINGS_INITIAL_WINDOW_SIZE, limits.streamWindow],
      [SETTINGS_MAX_HEADER_LIST_SIZE, limits.maxHeaderListSize],
    ];
    if (this.role === 'client') settings.push([SETTINGS_ENABLE_PUSH, 0]);
    this.#writer.settings(settings);
    this.#settingsSent = true;
    this.#grantConnectionWindow(limits.connectionWindow - DEFAULT_WINDOW);
    this.#scheduleFlush();
    if (limits.settingsTimeoutMs > 0) {
      this.#settingsTimer = setTimeout(() => {
        this.#connectionError(
          `our SETTINGS were not acknowledged within ${limits.settingsTimeoutMs} ms`,
          SETTINGS_TIMEOUT,
        );
      }, limits.settingsTimeoutMs);
      this.#settingsTimer.unref();
    }
  }

  #sendPing(): number {
    const id = (this.#pingCounter + 1) & 0xffff;
    this.#pingCounter = id;
    const payload = Buffer.allocUnsafe(8);
    payload.writeUInt32BE(PING_TAG | id, 0);
    payload.writeUInt32BE(this.#pingNonce, 4);
    this.#writer.ping(payload, 0, false);
    this.#scheduleFlush();
    return id;
  }

  #grantConnectionWindow(bytes: number): void {
    if (bytes <= 0) return;
    this.#writer.windowUpdate(0, bytes);
    this.#recvWindow += bytes;
    this.#scheduleFlush();
  }

  /**
   * DATA for `stream` is held until its owner hands it on. The connection window is given back on
   * receipt (as grpc-go does): a stream whose reader stalls holds at most its own window and
   * cannot stall the connection's other streams — up to `maxBufferedBytes` held in all.
   */
  #hold(stream: Stream, length: number): void {
    stream.unconsumed += length;
    this.#buffered += length;
    if (this.#buffered <= this.#limits.maxBufferedBytes) this.#credit(length);
    else this.#withheld += length;
  }

  /** Held bytes handed on, or dropped: window withheld at the cap goes back with them. */
  #release(stream: Stream, bytes: number): void {
    stream.unconsumed -= bytes;
    this.#buffered -= bytes;
    if (this.#withheld > 0) {
      const owed = Math.min(this.#withheld, bytes);
      this.#withheld -= owed;
      this.#credit(owed);
    }
  }

  /** Connection window spent by DATA received: granted back in batches. */
  #credit(bytes: number): void {
    this.#unacked += bytes;
    if (this.#unacked >= this.#limits.connectionWindow >>> 2) {
      this.#grantConnectionWindow(this.#unacked);
      this.#unacked = 0;
    }
  }

  // ---- Input ----

  #onInput(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.#reader.read(chunk);
    } catch (error) {
      if (error instanceof ConnectionError) {
        this.#connectionError(error.message, error.code);
      } else {
        // A bug must cost one connection, never the process.
        this.#connectionError(`internal error: ${(error as Error).message}`, INTERNAL_ERROR);
      }
    }
  }

  onPreface(): void {
    this.#sendSettings();
  }

  onBadPreface(start: Buffer): void {
    // An HTTP/1.x client gets an answer it can read before the socket closes.
    if (
      !/^(?:GET|HEAD|POST|PUT|DELETE|CONNECT|OPTIONS|TRACE|PATCH) /.test(
        start.toString('latin1', 0, 8),
      )
    )
      return;
    const body = 'This is an HTTP/2 endpoint; HTTP/1.x is not supported.\n';
    this.#writer.raw(
      Buffer.from(
        `HTTP/1.1 505 HTTP Version Not Supported\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        'latin1',
      ),
    );
  }

  onFrame(
    type: number,
    flags: number,
    streamId: number,
    buf: Buffer,
    start: number,
    length: number,
  ): void {
    if (this.#block !== undefined && type !== CONTINUATION) {
      throw new ConnectionError(
        PROTOCOL_ERROR,
        'a frame other than CONTINUATION inside a header block',
      );
    }
    if (!this.ready && (type !== SETTINGS || (flags & FLAG_ACK) !== 0)) {
      // §3.4: the preface ends with a SETTINGS frame.
      throw new ConnectionError(PROTOCOL_ERROR, 'the first frame is not SETTINGS');
    }
    switch (type) {
      case DATA:
        this.#onData(flags, streamId, buf, start, length);
        return;
      case HEADERS:
        this.#onHeaders(flags, streamId, buf, start, length);
        return;
      case CONTINUATION:
        this.#onContinuation(flags, streamId, buf, start, length);
        return;
      case PRIORITY:
        this.#onPriority(streamId, buf, start, length);
        return;
      case RST_STREAM:
        this.#onReset(streamId, buf, start, length);
        return;
      case SETTINGS:
        this.#onSettings(flags, streamId, buf, start, length);
        return;
      case PUSH_PROMISE:
        // §8.4: a client that disabled push, and any server, must not receive one.
        throw new ConnectionError(PROTOCOL_ERROR, 'PUSH_PROMISE (push is disabled)');
      case PING:
        this.#onPing(flags, streamId, buf, start, length);
        return;
      case GOAWAY:
        this.#onGoaway(streamId, buf, start, length);
        return;
      case WINDOW_UPDATE:
        this.#onWindowUpdate(streamId, buf, start, length);
        return;
      default:
        // §5.5: unknown frame types are ignored — but they cost a frame's work each.
        this.#countEmpty();
        return;
    }
  }

  #onData(flags: number, streamId: number, buf: Buffer, start: number, length: number): void {
    if (streamId === 0) throw new ConnectionError(PROTOCOL_ERROR, 'DATA on stream 0');
    // §6.9: every DATA frame counts against the connection window, whatever its stream.
    this.#recvWindow -= length;
    if (this.#recvWindow < 0)
      throw new ConnectionError(FLOW_CONTROL_ERROR, 'connection window exceeded');
    let end = start + length;
    if (flags & FLAG_PADDED) {
      // §6.1: padding as long as the payload or longer is a connection error.
      if (length === 0 || buf[start]! >= length)
        throw new ConnectionError(PROTOCOL_ERROR, 'DATA padding exceeds the payload');
      end -= buf[start]!;
      start++;
    }
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    const stream = this.#streams.get(streamId);
    if (stream === undefined || !stream.receivable) {
      this.#credit(length);
      this.#onFrameOnNonLive(DATA, streamId, stream);
      return;
    }
    stream.recvWindow -= length;
    this.#hold(stream, length);
    if (stream.recvWindow < 0) {
      this.#release(stream, length);
      this.#streamError(stream, streamId, FLOW_CONTROL_ERROR);
      return;
    }
    const payload = end - start;
    if (length === 0 && !endStream) this.#countEmpty();
    if (!stream.headersReceived) {
      // §8.1: a response starts with its HEADERS.
      this.#release(stream, length);
      this.#streamError(stream, streamId, PROTOCOL_ERROR);
      return;
    }
    if (stream.expectedLength >= 0) {
      stream.receivedLength += payload;
      // §8.1.1: DATA beyond, or an end short of, the declared content-length is malformed.
      if (
        stream.receivedLength > stream.expectedLength ||
        (endStream && stream.receivedLength !== stream.expectedLength)
      ) {
        this.#release(stream, length);
        this.#streamError(stream, streamId, PROTOCOL_ERROR);
        return;
      }
    }
    // Padding never reaches the owner: its window goes back at once.
    if (payload < length) this.consumed(stream, length - payload);
    const closedNow = endStream && stream.receivedEnd();
    stream.handler?.onData(stream, buf.subarray(start, end), endStream);
    if (endStream) this.#afterRemoteEnd(stream, closedNow);
  }

  #onHeaders(flags: number, streamId: number, buf: Buffer, start: number, length: number): void {
    if (streamId === 0) throw new ConnectionError(PROTOCOL_ERROR, 'HEADERS on stream 0');
    let end = start + length;
    let padding = 0;
    if (flags & FLAG_PADDED) {
      if (length === 0)
        throw new ConnectionError(FRAME_SIZE_ERROR, 'HEADERS too short for its padding');
      padding = buf[start]!;
      start++;
    }
    let selfDependent = false;
    if (flags & FLAG_PRIORITY) {
      if (end - start < 5)
        throw new ConnectionError(FRAME_SIZE_ERROR, 'HEADERS too short for its priority');
      selfDependent = (buf.readUInt32BE(start) & 0x7fffffff) === streamId;
      start += 5;
    }
    // §6.2: padding that exceeds what remains is a connection error.
    if (padding > end - start)
      throw new ConnectionError(PROTOCOL_ERROR, 'HEADERS padding exceeds the payload');
    end -= padding;
    if (flags & FLAG_END_HEADERS) {
      this.#onHeaderBlock(streamId, flags, selfDependent, buf.subarray(start, end));
      return;
    }
    // The block continues in CONTINUATION frames: its fragments are copied into one buffer
    // that grows by doubling, so frames cost no allocation each (CVE-2024-27316).
    const size = end - start;
    const limits = this.#limits;
    if (size > limits.maxHeaderBlockBytes) {
      throw new ConnectionError(
        ENHANCE_YOUR_CALM,
        `header block larger than ${limits.maxHeaderBlockBytes} bytes`,
      );
    }
    const buffer = Buffer.allocUnsafe(
      Math.min(Math.max(2 * size, 4096), limits.maxHeaderBlockBytes),
    );
    buf.copy(buffer, 0, start, end);
    const timer =
      limits.headerBlockTimeoutMs > 0
        ? setTimeout(() => {
            this.#connectionError(
              `a header block did not end within ${limits.headerBlockTimeoutMs} ms`,
              ENHANCE_YOUR_CALM,
            );
          }, limits.headerBlockTimeoutMs)
        : undefined;
    timer?.unref();
    this.#block = { streamId, flags, selfDependent, buffer, size, frames: 0, timer };
  }

  #onContinuation(
    flags: number,
    streamId: number,
    buf: Buffer,
    start: number,
    length: number,
  ): void {
    const block = this.#block;
    // §6.10: CONTINUATION only follows a HEADERS (or CONTINUATION) without END_HEADERS on the
    // same stream.
    if (block === undefined || block.streamId !== streamId) {
      throw new ConnectionError(PROTOCOL_ERROR, 'CONTINUATION without a header block');
    }
    const limits = this.#limits;
    if (++block.frames > limits.maxContinuationFrames) {
      throw new ConnectionError(
        ENHANCE_YOUR_CALM,
        `more than ${limits.maxContinuationFrames} CONTINUATION frames`,
      );
    }
    if (length > 0) {
      const size = block.size + length;
      if (size > limits.maxHeaderBlockBytes) {
        throw new ConnectionError(
          ENHANCE_YOUR_CALM,
          `header block larger than ${limits.maxHeaderBlockBytes} bytes`,
        );
      }
      if (size > block.buffer.length) {
        const grown = Buffer.allocUnsafe(
          Math.min(Math.max(2 * block.buffer.length, size), limits.maxHeaderBlockBytes),
        );
        block.buffer.copy(grown, 0, 0, block.size);
        block.buffer = grown;
      }
      buf.copy(block.buffer, block.size, start, start + length);
      block.size = size;
    }
    if (flags & FLAG_END_HEADERS) {
      clearTimeout(block.timer);
      this.#block = undefined;
      this.#onHeaderBlock(
        streamId,
        block.flags,
        block.selfDependent,
        block.buffer.subarray(0, block.size),
      );
    }
  }

  #onHeaderBlock(streamId: number, flags: number, selfDependent: boolean, fragment: Buffer): void {
    // §4.3: every header block is decoded, even one that is then refused or ignored, to keep
    // the HPACK state in step with the peer's.
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
      // §5.3.1: a stream cannot depend on itself.
      if (selfDependent) this.#streamError(stream, streamId, PROTOCOL_ERROR);
      else if (!stream.receivable) this.#streamError(stream, streamId, STREAM_CLOSED);
      else this.#onStreamHeaders(stream, headers, endStream);
      return;
    }
    if (this.role === 'client' || (streamId & 1) === 0 || streamId <= this.#lastPeerStreamId) {
      this.#onFrameOnNonLive(HEADERS, streamId, undefined);
      return;
    }
    // A new stream (server role).
    this.#lastPeerStreamId = streamId;
    if (this.#goawayLastId >= 0 && streamId > this.#goawayLastId) return; // §6.8: beyond our GOAWAY
    if (selfDependent) {
      this.#streamError(undefined, streamId, PROTOCOL_ERROR);
      return;
    }
    if (this.#streams.size >= this.#limits.maxConcurrentStreams) {
      // §5.1.2: beyond our limit; REFUSED_STREAM tells the client it is safe to retry.
      this.#streamError(undefined, streamId, REFUSED_STREAM);
      return;
    }
    const length = declaredLength(headers);
    if (requestProblem(headers) !== undefined || length === -2 || (endStream && length > 0)) {
      this.#streamError(undefined, streamId, PROTOCOL_ERROR);
      return;
    }
    const created = new Stream(this, streamId, this.#peerInitialWindow, this.#recvInitial);
    created.opened(false, endStream);
    created.headersReceived = true;
    created.expectedLength = length;
    this.#streams.set(streamId, created);
    this.#lastAccepted = streamId;
    this.#active();
    this.#handler.onStream?.(created, headers, endStream);
  }

  /** A header block on a live stream: the response's head (client role), or trailers. */
  #onStreamHeaders(stream: Stream, headers: HeaderBlock, endStream: boolean): void {
    const id = stream.id;
    if (!stream.headersReceived) {
      // Client role: the response.
      const status = headers.get(':status');
      if (status !== undefined && status.length === 3 && status.charCodeAt(0) === 49) {
        // §8.1: a 1xx response is informational (the real one follows) and cannot end the stream.
        if (endStream || responseProblem(headers) !== undefined)
          this.#streamError(stream, id, PROTOCOL_ERROR);
        return;
      }
      const length = declaredLength(headers);
      if (responseProblem(headers) !== undefined || length === -2) {
        this.#streamError(stream, id, PROTOCOL_ERROR);
        return;
      }
      stream.headersReceived = true;
      // §8.1.1: responses that have no content (to HEAD, 204, 304) may declare a length anyway.
      if (stream.expectedLength !== -3 && status !== '204' && status !== '304') {
        if (endStream && length > 0) {
          this.#streamError(stream, id, PROTOCOL_ERROR);
          return;
        }
        stream.expectedLength = length;
      } else {
        stream.expectedLength = -1;
      }
    } else if (
      // §8.1: trailers end the stream and carry no pseudo-header fields.
      !endStream ||
      trailersProblem(headers) !== undefined ||
      (stream.expectedLength >= 0 && stream.receivedLength !== stream.expectedLength)
    ) {
      this.#streamError(stream, id, PROTOCOL_ERROR);
      return;
    }
    const closedNow = endStream && stream.receivedEnd();
    stream.handler?.onHeaders(stream, headers, endStream);
    if (endStream) this.#afterRemoteEnd(stream, closedNow);
  }

  /** The peer's END_STREAM was handed to the owner. */
  #afterRemoteEnd(stream: Stream, closedNow: boolean): void {
    if (closedNow) {
      this.#forget(stream, ENDED);
    } else if (this.role === 'client' && stream.state === 'half-closed-remote') {
      // The response is complete: the server has no use for the rest of the request.
      this.resetStream(stream, CANCEL);
    }
  }

  /**
   * A frame for a stream that is not open to the peer (RFC 9113 §5.1): idle, half-closed
   * (remote), or closed — and then how it closed decides.
   */
  #onFrameOnNonLive(type: number, streamId: number, live: Stream | undefined): void {
    if (live !== undefined) {
      // Half-closed (remote): only WINDOW_UPDATE, PRIORITY and RST_STREAM may follow.
      this.#streamError(live, streamId, STREAM_CLOSED);
      return;
    }
    if (this.#isIdle(streamId)) {
      throw new ConnectionError(PROTOCOL_ERROR, `${frameName(type)} on idle stream ${streamId}`);
    }
    // Closed. Client role: our own streams, which we closed; whatever still comes is ignored.
    if (this.role === 'client') return;
    if (this.#goawayLastId >= 0 && streamId > this.#goawayLastId) return; // §6.8
    switch (this.#closedKind(streamId)) {
      case RESET_SENT:
        return; // §5.1: frames racing our RST_STREAM are ignored
      case RESET_RECEIVED:
        // §5.1: after the peer's RST_STREAM anything but PRIORITY is a stream error.
        this.#streamError(undefined, streamId, STREAM_CLOSED);
        return;
      case ENDED:
        // §5.1: frames after END_STREAM both ways are a STREAM_CLOSED error; for DATA, a stream
        // error is enough.
        if (type === HEADERS)
          throw new ConnectionError(STREAM_CLOSED, `HEADERS on closed stream ${streamId}`);
        this.#streamError(undefined, streamId, STREAM_CLOSED);
        return;
      default:
        // Not remembered: closed long ago, or never opened (a lower id than one used, §5.1.1).
        if (type === HEADERS) {
          throw new ConnectionError(
            PROTOCOL_ERROR,
            `HEADERS on stream ${streamId}, lower than ${this.#lastPeerStreamId}`,
          );
        }
        return;
    }
  }

  /** §5.1.1: an id above every one used so far by its initiator is idle. */
  #isIdle(streamId: number): boolean {
    if ((streamId & 1) === 1) {
      return this.role === 'server'
        ? streamId > this.#lastPeerStreamId
        : streamId >= this.#nextStreamId;
    }
    // Even ids are the server's, which opens none (no push).
    return true;
  }

  #onPriority(streamId: number, buf: Buffer, start: number, length: number): void {
    if (streamId === 0) throw new ConnectionError(PROTOCOL_ERROR, 'PRIORITY on stream 0');
    this.#countEmpty();
    // §6.3: the wrong length is a stream error; §5.3.1: so is a dependency on itself. The
    // priority itself is only advice (deprecated in RFC 9113 §5.3.2) and not acted on.
    if (length !== 5) this.#streamError(this.#streams.get(streamId), streamId, FRAME_SIZE_ERROR);
    else if ((buf.readUInt32BE(start) & 0x7fffffff) === streamId) {
      this.#streamError(this.#streams.get(streamId), streamId, PROTOCOL_ERROR);
    }
  }

  #onReset(streamId: number, buf: Buffer, start: number, length: number): void {
    if (length !== 4) throw new ConnectionError(FRAME_SIZE_ERROR, 'RST_STREAM length');
    if (streamId === 0) throw new ConnectionError(PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    const stream = this.#streams.get(streamId);
    if (stream === undefined) {
      // §5.1: on an idle stream it is a connection error; on a closed one it is ignored (never
      // answer RST_STREAM with RST_STREAM, §5.4.2).
      if (this.#isIdle(streamId))
        throw new ConnectionError(PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
      return;
    }
    if (this.role === 'server') this.#countReset();
    const code = buf.readUInt32BE(start);
    stream.terminated();
    this.#forget(stream, RESET_RECEIVED);
    stream.handler?.onReset(stream, code, undefined);
  }

  #onSettings(flags: number, streamId: number, buf: Buffer, start: number, length: number): void {
    if (streamId !== 0) throw new ConnectionError(PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & FLAG_ACK) {
      if (length !== 0) throw new ConnectionError(FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      this.#onSettingsAck();
      return;
    }
    if (length % 6 !== 0) throw new ConnectionError(FRAME_SIZE_ERROR, 'SETTINGS length');
    if (this.#settingsRate.exceeded()) {
      throw new ConnectionError(
        ENHANCE_YOUR_CALM,
        `more than ${this.#limits.maxSettingsPerSecond} SETTINGS a second`,
      );
    }
    let initialWindow = -1;
    for (let p = start; p < start + length; p += 6) {
      const id = buf.readUInt16BE(p);
      const value = buf.readUInt32BE(p + 2);
      switch (id) {
        case SETTINGS_HEADER_TABLE_SIZE:
          this.#encoder.setMaxTableSize(value);
          break;
        case SETTINGS_ENABLE_PUSH:
          if (value > 1)
            throw new ConnectionError(PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH not 0 or 1');
          // §6.5.2: a server must not enable push.
          if (value === 1 && this.role === 'client')
            throw new ConnectionError(PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH 1 from a server');
          break;
        case SETTINGS_MAX_CONCURRENT_STREAMS: {
          const raised = value > this.peerMaxStreams;
          this.peerMaxStreams = value;
          if (raised && this.ready) this.#handler.onCapacity();
          break;
        }
        case SETTINGS_INITIAL_WINDOW_SIZE:
          // §6.5.2: above 2^31-1 is a FLOW_CONTROL_ERROR.
          if (value > MAX_WINDOW)
            throw new ConnectionError(
              FLOW_CONTROL_ERROR,
              'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1',
            );
          initialWindow = value;
          break;
        case SETTINGS_MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) {
            throw new ConnectionError(PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE out of range');
          }
          this.#peerMaxFrameSize = value;
          break;
        case SETTINGS_MAX_HEADER_LIST_SIZE:
          this.peerMaxHeaderListSize = value;
          break;
        default:
          break; // §6.5.2: unknown settings are ignored
      }
    }
    // Applied once, with the frame's last value: values in between are never observable.
    if (initialWindow >= 0) this.#applyPeerInitialWindow(initialWindow);
    this.#writer.settingsAck();
    this.#scheduleFlush();
    if (!this.ready) {
      this.ready = true;
      clearTimeout(this.#handshakeTimer);
      this.#handler.onReady();
    }
  }

  /** §6.9.2: a new initial window changes every stream's send window by the difference. */
  #applyPeerInitialWindow(value: number): void {
    const delta = value - this.#peerInitialWindow;
    if (delta === 0) return;
    this.#peerInitialWindow = value;
    for (const stream of this.#streams.values()) {
      if (stream.sendWindow + delta > MAX_WINDOW) {
        throw new ConnectionError(
          FLOW_CONTROL_ERROR,
          'SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window',
        );
      }
      stream.sendWindow += delta;
    }
    if (delta > 0) this.#flushAllBlocked();
  }

  #onSettingsAck(): void {
    if (this.#settingsAcked) return;
    this.#settingsAcked = true;
    clearTimeout(this.#settingsTimer);
    // Our SETTINGS_INITIAL_WINDOW_SIZE is now in force; a window smaller than the default
    // shrinks the streams opened before (§6.9.2).
    const streamWindow = this.#limits.streamWindow;
    if (streamWindow < this.#recvInitial) {
      const delta = streamWindow - this.#recvInitial;
      for (const stream of this.#streams.values()) stream.recvWindow += delta;
      this.#recvInitial = streamWindow;
    }
  }

  #onPing(flags: number, streamId: number, buf: Buffer, start: number, length: number): void {
    if (length !== 8) throw new ConnectionError(FRAME_SIZE_ERROR, 'PING length');
    if (streamId !== 0) throw new ConnectionError(PROTOCOL_ERROR, 'PING on a stream');
    if (flags & FLAG_ACK) {
      // §6.7: an ACK carries the payload of the PING it answers; others are not ours.
      const word = buf.readUInt32BE(start);
      if ((word & 0xffff0000) >>> 0 !== PING_TAG || buf.readUInt32BE(start + 4) !== this.#pingNonce)
        return;
      const id = word & 0xffff;
      if (id === this.#drainPingId) {
        this.#drainPingId = -1;
        this.#finalGoaway();
        return;
      }
      const pings = this.#pings;
      for (let i = 0; i < pings.length; i++) {
        if (pings[i]!.id === id) {
          const [ping] = pings.splice(i, 1);
          ping!.callback();
          return;
        }
      }
      return;
    }
    if (this.#pingRate.exceeded()) {
      throw new ConnectionError(
        ENHANCE_YOUR_CALM,
        `more than ${this.#limits.maxPingsPerSecond} PINGs a second`,
      );
    }
    this.#writer.ping(buf, start, true);
    this.#scheduleFlush();
  }

  #onGoaway(streamId: number, buf: Buffer, start: number, length: number): void {
    if (streamId !== 0) throw new ConnectionError(PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (length < 8) throw new ConnectionError(FRAME_SIZE_ERROR, 'GOAWAY length');
    const lastStreamId = buf.readUInt32BE(start) & 0x7fffffff;
    const code = buf.readUInt32BE(start + 4);
    this.#goawayReceived = true;
    if (code !== NO_ERROR) {
      const debug = buf.toString('latin1', start + 8, start + Math.min(length, 200));
      this.failure ??= `GOAWAY ${code}${debug ? `: ${debug}` : ''}`;
    }
    // Streams we opened that the peer will never process: refused, safe to retry elsewhere.
    const ours = this.role === 'client' ? 1 : 0;
    for (const stream of [...this.#streams.values()]) {
      if ((stream.id & 1) === ours && stream.id > lastStreamId) {
        stream.terminated();
        this.#forget(stream, RESET_RECEIVED);
        stream.handler?.onReset(stream, REFUSED_STREAM, 'the peer refused the stream (GOAWAY)');
      }
    }
    this.#handler.onGoaway(code, lastStreamId);
    this.#maybeFinish();
  }

  #onWindowUpdate(streamId: number, buf: Buffer, start: number, length: number): void {
    if (length !== 4) throw new ConnectionError(FRAME_SIZE_ERROR, 'WINDOW_UPDATE length');
    const increment = buf.readUInt32BE(start) & 0x7fffffff;
    if (streamId === 0) {
      // §6.9: a zero increment is a PROTOCOL_ERROR; §6.9.1: beyond 2^31-1 a FLOW_CONTROL_ERROR.
      if (increment === 0) throw new ConnectionError(PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW)
        throw new ConnectionError(FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      this.#flushAllBlocked();
      return;
    }
    const stream = this.#streams.get(streamId);
    if (stream === undefined) {
      if (this.#isIdle(streamId))
        throw new ConnectionError(PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
      if (increment === 0) this.#countEmpty();
      // §5.1: after the peer's RST_STREAM, a stream error; otherwise it may race our END_STREAM.
      if (this.role === 'server' && this.#closedKind(streamId) === RESET_RECEIVED) {
        this.#streamError(undefined, streamId, STREAM_CLOSED);
      }
      return;
    }
    if (increment === 0) {
      this.#countEmpty();
      this.#streamError(stream, streamId, PROTOCOL_ERROR);
      return;
    }
    if (stream.sendWindow + increment > MAX_WINDOW) {
      this.#streamError(stream, streamId, FLOW_CONTROL_ERROR);
      return;
    }
    stream.sendWindow += increment;
    stream.flush();
  }

  // ---- Errors and limits ----

  /**
   * A stream error (§5.4.2): RST_STREAM(`code`), the stream closed, its owner told. On an idle
   * stream, where RST_STREAM may not be sent (§6.4), it becomes a connection error.
   */
  #streamError(stream: Stream | undefined, streamId: number, code: number): void {
    if (stream === undefined && this.#isIdle(streamId)) {
      throw new ConnectionError(code, `stream error on idle stream ${streamId}`);
    }
    if (this.role === 'server') this.#countReset();
    this.#writer.rstStream(streamId, code);
    this.#scheduleFlush();
    if (stream === undefined) {
      this.#remember(streamId, RESET_SENT);
      return;
    }
    stream.terminated();
    this.#forget(stream, RESET_SENT);
    stream.handler?.onReset(stream, code, undefined);
  }

  // "Rapid reset" (CVE-2023-44487): a client that opens and cancels streams as fast as it can
  // makes a proxy open and cancel as many upstream. Its own resets and the ones its errors make
  // us send count alike.
  #countReset(): void {
    if (this.#resetRate.exceeded()) {
      throw new ConnectionError(
        ENHANCE_YOUR_CALM,
        `more than ${this.#limits.maxResetsPerSecond} stream resets a second`,
      );
    }
  }

  #countEmpty(): void {
    if (this.#emptyRate.exceeded()) {
      throw new ConnectionError(
        ENHANCE_YOUR_CALM,
        `more than ${this.#limits.maxEmptyFramesPerSecond} empty frames a second`,
      );
    }
  }

  // ---- Stream lifecycle ----

  /** Our END_STREAM went out. */
  #sentEnd(stream: Stream): void {
    if (stream.sentEnd()) {
      this.#forget(stream, ENDED);
    } else if (this.role === 'server' && stream.state === 'half-closed-local') {
      // §8.1: the response is complete before the request: the client may stop sending it.
      this.resetStream(stream, NO_ERROR);
    }
  }

  /** `stream` is closed: it leaves the connection, which remembers how it closed. */
  #forget(stream: Stream, kind: number): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    if (this.#blocked.length > 0) {
      const index = this.#blocked.indexOf(stream);
      if (index >= 0) this.#blocked.splice(index, 1);
    }
    if (this.role === 'server') this.#remember(stream.id, kind);
    if (this.#streams.size === 0 && this.#limits.idleTimeoutMs > 0)
      this.#idleSince = performance.now();
    if (this.role === 'client') this.#handler.onCapacity();
    this.#maybeFinish();
  }

  #remember(streamId: number, kind: number): void {
    if (this.#closedIds === undefined) {
      this.#closedIds = new Int32Array(CLOSED_REMEMBERED);
      this.#closedKinds = new Uint8Array(CLOSED_REMEMBERED);
    }
    const slot = this.#closedNext;
    this.#closedIds[slot] = streamId;
    this.#closedKinds![slot] = kind;
    this.#closedNext = (slot + 1) % CLOSED_REMEMBERED;
  }

  #closedKind(streamId: number): number {
    const ids = this.#closedIds;
    if (ids === undefined) return 0;
    // Newest first: a stream is remembered once, but its slot may have been reused.
    for (let i = 1; i <= CLOSED_REMEMBERED; i++) {
      const slot = (this.#closedNext - i + CLOSED_REMEMBERED) % CLOSED_REMEMBERED;
      if (ids[slot] === streamId) return this.#closedKinds![slot]!;
    }
    return 0;
  }

  /** A stream opened. */
  #active(): void {
    this.#idleSince = -1;
  }

  #armIdleTimer(delay: number): void {
    if (this.#limits.idleTimeoutMs <= 0) return;
    this.#idleTimer = setTimeout(() => this.#checkIdle(), delay);
    this.#idleTimer.unref();
  }

  /** One timer per idle period, not one per stream: it re-arms for what is left. */
  #checkIdle(): void {
    if (this.closed || this.#closing) return;
    const timeout = this.#limits.idleTimeoutMs;
    if (this.#streams.size === 0 && this.#idleSince >= 0) {
      const idle = performance.now() - this.#idleSince;
      if (idle >= timeout) {
        this.close();
        return;
      }
      this.#armIdleTimer(timeout - idle);
      return;
    }
    this.#armIdleTimer(timeout);
  }

  /** After GOAWAY either way, the connection closes once its last stream has. */
  #maybeFinish(): void {
    if (this.#streams.size > 0 || this.closed) return;
    if ((this.#closing && this.#goawayLastId >= 0) || this.#goawayReceived) this.#endSocket();
  }

  #endSocket(): void {
    this.flush();
    this.socket.end();
    // A peer that never closes its side must not keep the socket for ever.
    this.#lingerTimer ??= setTimeout(() => this.socket.destroy(), DRAIN_LINGER_MS);
    this.#lingerTimer.unref();
  }

  #finalGoaway(): void {
    clearTimeout(this.#goawayTimer);
    if (this.closed || this.#goawayLastId >= 0) return;
    this.#goawayLastId = this.#lastAccepted;
    if (this.#settingsSent) {
      this.#writer.goaway(this.#lastAccepted, NO_ERROR, '');
      this.#goawaySent = true;
      this.#scheduleFlush();
    }
    this.#maybeFinish();
  }

  /** The connection is over: every stream still open learns why, then the owner does. */
  #terminate(destroyedFor?: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.#handshakeTimer);
    clearTimeout(this.#settingsTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#goawayTimer);
    clearTimeout(this.#block?.timer);
    this.#block = undefined;
    this.#blocked = [];
    this.#writer.discard();
    const clean =
      destroyedFor === undefined &&
      this.#streams.size === 0 &&
      (this.#goawayReceived || this.#goawaySent);
    const reason = clean ? undefined : (this.failure ?? 'connection closed');
    if (reason !== undefined) this.failure ??= reason;
    const pings = this.#pings;
    this.#pings = [];
    for (const ping of pings) ping.callback(reason ?? 'connection closed');
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const stream of streams) {
      stream.terminated();
      stream.handler?.onReset(stream, CANCEL, reason ?? 'connection closed');
    }
    this.#handler.onClose(reason);
  }
}

function flushSession(session: Session): void {
  session.flush();
}

function frameName(type: number): string {
  return (
    [
      'DATA',
      'HEADERS',
      'PRIORITY',
      'RST_STREAM',
      'SETTINGS',
      'PUSH_PROMISE',
      'PING',
      'GOAWAY',
      'WINDOW_UPDATE',
      'CONTINUATION',
    ][type] ?? `frame ${type}`
  );
}
