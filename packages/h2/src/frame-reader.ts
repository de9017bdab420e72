import {
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_HEADER_SIZE,
  FRAME_SIZE_ERROR,
  PREFACE,
  PROTOCOL_ERROR,
} from './constants.js';
import { ConnectionError } from './errors.js';

/** Where complete frames go. The payload is `buf[start, start + length)`, valid during the call only. */
export interface FrameSink {
  onFrame(
    type: number,
    flags: number,
    streamId: number,
    buf: Buffer,
    start: number,
    length: number,
  ): void;
  /** The server role's input began with the client preface (§3.4). */
  onPreface(): void;
  /** The server role's input did not start with the client preface (§3.4). */
  onBadPreface(start: Buffer): void;
  /** Stop: the connection ended while a chunk was being read. */
  readonly closed: boolean;
}

/**
 * Cuts a connection's input into frames (RFC 9113 §4.1): checks the client preface (server role,
 * §3.4) and every frame's length against our SETTINGS_MAX_FRAME_SIZE (§4.2). Complete frames are
 * handed on as views of the socket's chunk, without a copy; a frame split across chunks is
 * assembled in a buffer of exactly its size, so no view outlives the chunk it came from.
 * Package-private.
 */
export class FrameReader {
  readonly #sink: FrameSink;
  #prefacePending: boolean;
  #partial: Buffer | undefined = undefined;
  #partialFilled = 0;

  constructor(sink: FrameSink, expectPreface: boolean) {
    this.#sink = sink;
    this.#prefacePending = expectPreface;
  }

  /** @throws ConnectionError */
  read(chunk: Buffer): void {
    const sink = this.#sink;
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
      const length = (partial[0]! << 16) | (partial[1]! << 8) | partial[2]!;
      if (partial.length === FRAME_HEADER_SIZE && length > 0) {
        // Only the frame header was held; now the payload's size is known.
        checkFrameSize(length);
        const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + length);
        partial.copy(frame, 0);
        this.#partial = frame;
        this.#partialFilled = FRAME_HEADER_SIZE;
        continue;
      }
      this.#frame(partial, 0, length);
      if (sink.closed) return;
    }
    if (this.#prefacePending) {
      const available = chunk.length - pos;
      // A client that is not speaking HTTP/2 is told so as soon as its bytes differ.
      if (
        PREFACE.compare(
          chunk,
          pos,
          pos + Math.min(available, PREFACE.length),
          0,
          Math.min(available, PREFACE.length),
        ) !== 0
      ) {
        this.#badPreface(chunk.subarray(pos));
      }
      if (available < PREFACE.length) {
        this.#hold(chunk, pos, PREFACE.length);
        return;
      }
      this.#prefacePending = false;
      pos += PREFACE.length;
      sink.onPreface();
    }
    while (!sink.closed) {
      const remaining = chunk.length - pos;
      if (remaining < FRAME_HEADER_SIZE) {
        if (remaining > 0) this.#hold(chunk, pos, FRAME_HEADER_SIZE);
        return;
      }
      const length = (chunk[pos]! << 16) | (chunk[pos + 1]! << 8) | chunk[pos + 2]!;
      checkFrameSize(length);
      if (remaining < FRAME_HEADER_SIZE + length) {
        this.#hold(chunk, pos, FRAME_HEADER_SIZE + length);
        return;
      }
      this.#frame(chunk, pos, length);
      pos += FRAME_HEADER_SIZE + length;
    }
  }

  #frame(buf: Buffer, pos: number, length: number): void {
    const streamId =
      ((buf[pos + 5]! & 0x7f) << 24) | (buf[pos + 6]! << 16) | (buf[pos + 7]! << 8) | buf[pos + 8]!;
    // The reserved bit R is ignored on receipt (§4.1).
    this.#sink.onFrame(
      buf[pos + 3]!,
      buf[pos + 4]!,
      streamId,
      buf,
      pos + FRAME_HEADER_SIZE,
      length,
    );
  }

  /** Keeps the start of an incomplete frame (or preface), in a buffer of its full size. */
  #hold(buf: Buffer, pos: number, size: number): void {
    const partial = Buffer.allocUnsafe(size);
    this.#partialFilled = buf.copy(partial, 0, pos);
    this.#partial = partial;
  }

  #checkPreface(buf: Buffer, pos: number): void {
    if (PREFACE.compare(buf, pos, pos + PREFACE.length) !== 0) this.#badPreface(buf.subarray(pos));
    this.#prefacePending = false;
    this.#sink.onPreface();
  }

  #badPreface(start: Buffer): never {
    this.#sink.onBadPreface(start);
    // §3.4: an invalid preface is a connection error of type PROTOCOL_ERROR.
    throw new ConnectionError(
      PROTOCOL_ERROR,
      'the client did not send the HTTP/2 connection preface',
    );
  }
}

/** We never raise SETTINGS_MAX_FRAME_SIZE above its default (§4.2: FRAME_SIZE_ERROR beyond it). */
function checkFrameSize(length: number): void {
  if (length > DEFAULT_MAX_FRAME_SIZE) {
    throw new ConnectionError(FRAME_SIZE_ERROR, `frame of ${length} bytes`);
  }
}
