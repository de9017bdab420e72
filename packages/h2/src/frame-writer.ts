import type { Socket } from 'node:net';
import {
  CONTINUATION,
  DATA,
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FRAME_HEADER_SIZE,
  GOAWAY,
  HEADERS,
  PING,
  RST_STREAM,
  SETTINGS,
  WINDOW_UPDATE,
} from './constants.js';

const SLAB_SIZE = 64 * 1024;
/**
 * A connection starts with a small slab — its handshake's frames fit — so that thousands of idle
 * connections cost little; one that writes more gets a full slab at its first burst.
 */
const FIRST_SLAB_SIZE = 1024;
/**
 * DATA payloads up to this size are copied next to their frame header (many frames, one write);
 * larger ones are written as they are, without a copy.
 */
export const COPY_LIMIT = 2048;

/**
 * Serialises frames for one connection. Frames produced while one burst of input is handled
 * collect in a slab (small payloads copied) and a list of chunks (large payloads referenced), and
 * go out together in one write. Package-private: streams write through their connection.
 */
export class FrameWriter {
  readonly #socket: Socket;
  #slab = Buffer.allocUnsafeSlow(FIRST_SLAB_SIZE);
  #pos = 0;
  #flushed = 0;
  #chunks: Buffer[] = [];
  /** Bytes produced since the last flush. */
  #unflushed = 0;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** Bytes waiting to reach the kernel: produced but not flushed, plus the socket's own queue. */
  get queued(): number {
    return this.#unflushed + this.#socket.writableLength;
  }

  /** Something was produced since the last flush. */
  get pending(): boolean {
    return this.#unflushed > 0;
  }

  /** Raw bytes before any frame (the client preface, an HTTP/1.1 answer). */
  raw(bytes: Buffer): void {
    this.#reference(bytes);
  }

  header(length: number, type: number, flags: number, streamId: number): void {
    this.#reserve(FRAME_HEADER_SIZE + (length <= COPY_LIMIT ? length : 0));
    const slab = this.#slab;
    let p = this.#pos;
    slab[p++] = length >>> 16;
    slab[p++] = (length >>> 8) & 0xff;
    slab[p++] = length & 0xff;
    slab[p++] = type;
    slab[p++] = flags;
    slab.writeUInt32BE(streamId, p);
    this.#pos = p + 4;
    this.#unflushed += FRAME_HEADER_SIZE;
  }

  /** HEADERS and as many CONTINUATION frames as `maxFrameSize` needs (§6.2, §6.10). */
  headers(streamId: number, block: Buffer, endStream: boolean, maxFrameSize: number): void {
    let offset = 0;
    let type = HEADERS;
    let flags = endStream ? FLAG_END_STREAM : 0;
    do {
      const length = Math.min(maxFrameSize, block.length - offset);
      const last = offset + length >= block.length;
      this.header(length, type, last ? flags | FLAG_END_HEADERS : flags, streamId);
      this.#copy(block, offset, length);
      offset += length;
      type = CONTINUATION;
      flags = 0;
    } while (offset < block.length);
  }

  /**
   * DATA frames carrying `data[0, length)`, split at `maxFrameSize`; END_STREAM on the last one
   * when `endStream` (an empty frame when `length` is 0).
   */
  data(streamId: number, data: Buffer, length: number, endStream: boolean, maxFrameSize: number) {
    let offset = 0;
    do {
      const size = Math.min(maxFrameSize, length - offset);
      const last = offset + size === length;
      this.header(size, DATA, last && endStream ? FLAG_END_STREAM : 0, streamId);
      if (size <= COPY_LIMIT) this.#copy(data, offset, size);
      else
        this.#reference(
          offset === 0 && size === data.length ? data : data.subarray(offset, offset + size),
        );
      offset += size;
    } while (offset < length);
  }

  rstStream(streamId: number, code: number): void {
    this.header(4, RST_STREAM, 0, streamId);
    this.#uint32(code);
  }

  windowUpdate(streamId: number, increment: number): void {
    this.header(4, WINDOW_UPDATE, 0, streamId);
    this.#uint32(increment);
  }

  settings(settings: readonly (readonly [number, number])[]): void {
    this.header(settings.length * 6, SETTINGS, 0, 0);
    for (const [id, value] of settings) {
      this.#slab.writeUInt16BE(id, this.#pos);
      this.#slab.writeUInt32BE(value, this.#pos + 2);
      this.#pos += 6;
      this.#unflushed += 6;
    }
  }

  settingsAck(): void {
    this.header(0, SETTINGS, FLAG_ACK, 0);
  }

  /** PING with the 8 octets at `payload[offset]`. */
  ping(payload: Buffer, offset: number, ack: boolean): void {
    this.header(8, PING, ack ? FLAG_ACK : 0, 0);
    this.#copy(payload, offset, 8);
  }

  goaway(lastStreamId: number, code: number, debug: string): void {
    const debugBytes = Buffer.from(debug.slice(0, 200), 'latin1');
    this.header(8 + debugBytes.length, GOAWAY, 0, 0);
    this.#uint32(lastStreamId);
    this.#uint32(code);
    this.#copy(debugBytes, 0, debugBytes.length);
  }

  /** Writes everything produced since the last flush, in one write (corked when several). */
  flush(): void {
    if (this.#pos > this.#flushed) {
      this.#chunks.push(this.#slab.subarray(this.#flushed, this.#pos));
      this.#flushed = this.#pos;
    }
    this.#unflushed = 0;
    const chunks = this.#chunks;
    if (chunks.length === 0) return;
    this.#chunks = [];
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (chunks.length === 1) {
      socket.write(chunks[0]!);
      this.#reuse();
      return;
    }
    socket.cork();
    for (const chunk of chunks) socket.write(chunk);
    socket.uncork();
    this.#reuse();
  }

  /**
   * When the socket took everything synchronously it holds no view of the slab any more: the
   * slab is written from its start again, so a connection keeps one slab (and touches only as
   * much of it as its largest burst) instead of allocating a new one every 64 KiB.
   */
  #reuse(): void {
    if (this.#socket.writableLength === 0) {
      this.#pos = 0;
      this.#flushed = 0;
    }
  }

  /** Forgets what was not flushed (the connection is gone). */
  discard(): void {
    this.#chunks = [];
    this.#flushed = this.#pos;
    this.#unflushed = 0;
  }

  #uint32(value: number): void {
    this.#slab.writeUInt32BE(value, this.#pos);
    this.#pos += 4;
    this.#unflushed += 4;
  }

  #reserve(bytes: number): void {
    if (this.#pos + bytes <= this.#slab.length) return;
    if (this.#pos > this.#flushed) this.#chunks.push(this.#slab.subarray(this.#flushed, this.#pos));
    // The old slab stays alive only while the socket still holds the chunks cut from it.
    this.#slab = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, bytes));
    this.#pos = 0;
    this.#flushed = 0;
  }

  #copy(source: Buffer, offset: number, length: number): void {
    this.#reserve(length);
    source.copy(this.#slab, this.#pos, offset, offset + length);
    this.#pos += length;
    this.#unflushed += length;
  }

  #reference(data: Buffer): void {
    if (this.#pos > this.#flushed) {
      this.#chunks.push(this.#slab.subarray(this.#flushed, this.#pos));
      this.#flushed = this.#pos;
    }
    this.#chunks.push(data);
    this.#unflushed += data.length;
  }
}
