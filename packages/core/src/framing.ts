import { Status, StatusError } from './status.js';

/**
 * gRPC's length-prefixed message framing (PROTOCOL-HTTP2, "Length-Prefixed-Message"):
 * 1 byte compressed flag, 4 bytes big-endian length, then the message.
 */

/** Size of the prefix in front of every message. */
export const FRAME_HEADER_SIZE = 5;

/** grpc-go's, grpc-java's and grpc-js's default limit on a received message. */
export const DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024;

/** One message taken off the wire. `data` is still compressed when `compressed` is set. */
export interface GrpcMessage {
  readonly compressed: boolean;
  readonly data: Buffer;
}

/** A byte stream that breaks the framing rules: RESOURCE_EXHAUSTED for oversize, else INTERNAL. */
export class FramingError extends StatusError {
  constructor(code: Status, details: string) {
    super(code, details);
    this.name = 'FramingError';
  }
}

/** The 5-byte prefix alone, for writers that send the payload without copying it. */
export function encodeFrameHeader(length: number, compressed = false): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  header[0] = compressed ? 1 : 0;
  header.writeUInt32BE(length, 1);
  return header;
}

/** Prefix and payload in one buffer. */
export function encodeMessage(data: Uint8Array, compressed = false): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_SIZE + data.length);
  frame[0] = compressed ? 1 : 0;
  frame.writeUInt32BE(data.length, 1);
  frame.set(data, FRAME_HEADER_SIZE);
  return frame;
}

/** Options of {@link MessageDecoder}. */
export interface MessageDecoderOptions {
  /** Largest message accepted, in bytes; longer ones fail before any of them is buffered. */
  maxMessageSize?: number;
}

/**
 * Incremental decoder: feed it chunks as they arrive, get whole messages back.
 *
 * A message that lies inside one chunk is returned as a view of that chunk (no copy); only a
 * message split across chunks is copied, into a buffer of exactly its declared size, which the
 * size limit bounds. After an error the decoder stays failed: a stream with a broken frame
 * cannot be resynchronised.
 */
export class MessageDecoder {
  readonly #maxMessageSize: number;
  readonly #header = Buffer.alloc(FRAME_HEADER_SIZE);
  #headerFilled = 0;
  #message: Buffer | undefined;
  #messageFilled = 0;
  #compressed = false;
  #failure: FramingError | undefined;

  constructor({ maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE }: MessageDecoderOptions = {}) {
    this.#maxMessageSize = maxMessageSize;
  }

  /** Bytes received of a message that has not fully arrived, prefix included. */
  get buffered(): number {
    return this.#message ? FRAME_HEADER_SIZE + this.#messageFilled : this.#headerFilled;
  }

  /**
   * Consumes a chunk and returns every message it completes.
   * @throws {FramingError} on an oversize message or a flag byte other than 0 or 1.
   */
  push(chunk: Uint8Array): GrpcMessage[] {
    if (this.#failure) throw this.#failure;
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const messages: GrpcMessage[] = [];
    let offset = 0;
    while (offset < buf.length) {
      if (this.#message === undefined) {
        if (this.#headerFilled === 0 && buf.length - offset >= FRAME_HEADER_SIZE) {
          // Fast path: a whole prefix, and often the whole message, in this chunk.
          const length = this.#startMessage(buf[offset] as number, buf.readUInt32BE(offset + 1));
          offset += FRAME_HEADER_SIZE;
          if (buf.length - offset >= length) {
            messages.push({
              compressed: this.#compressed,
              data: buf.subarray(offset, offset + length),
            });
            offset += length;
            continue;
          }
          this.#message = Buffer.allocUnsafe(length);
        } else {
          const take = Math.min(FRAME_HEADER_SIZE - this.#headerFilled, buf.length - offset);
          buf.copy(this.#header, this.#headerFilled, offset, offset + take);
          this.#headerFilled += take;
          offset += take;
          if (this.#headerFilled < FRAME_HEADER_SIZE) break;
          this.#headerFilled = 0;
          const length = this.#startMessage(
            this.#header[0] as number,
            this.#header.readUInt32BE(1),
          );
          if (length === 0) {
            messages.push({ compressed: this.#compressed, data: Buffer.alloc(0) });
            continue;
          }
          this.#message = Buffer.allocUnsafe(length);
        }
      }
      const message = this.#message;
      const take = Math.min(message.length - this.#messageFilled, buf.length - offset);
      buf.copy(message, this.#messageFilled, offset, offset + take);
      this.#messageFilled += take;
      offset += take;
      if (this.#messageFilled === message.length) {
        messages.push({ compressed: this.#compressed, data: message });
        this.#message = undefined;
        this.#messageFilled = 0;
      }
    }
    return messages;
  }

  /**
   * Declares the stream finished.
   * @throws {FramingError} INTERNAL when it ended inside a message.
   */
  end(): void {
    if (this.#failure) throw this.#failure;
    if (this.buffered > 0) {
      const expected = this.#message ? `${this.#message.length}-byte message` : 'message prefix';
      this.#fail(
        new FramingError(
          Status.INTERNAL,
          `stream ended in the middle of a ${expected} (${this.buffered} bytes received)`,
        ),
      );
    }
  }

  #startMessage(flag: number, length: number): number {
    if (flag > 1) {
      this.#fail(
        new FramingError(Status.INTERNAL, `invalid message flag byte 0x${flag.toString(16)}`),
      );
    }
    if (length > this.#maxMessageSize) {
      this.#fail(
        new FramingError(
          Status.RESOURCE_EXHAUSTED,
          `received message larger than max (${length} vs. ${this.#maxMessageSize})`,
        ),
      );
    }
    this.#compressed = flag === 1;
    return length;
  }

  #fail(error: FramingError): never {
    this.#failure = error;
    throw error;
  }
}

/**
 * Finds the messages in a gRPC byte stream as it passes, without keeping its bytes: what a
 * proxy needs to count and size the messages it relays undecoded. Each message is reported once
 * its 5-byte prefix has arrived, with the length the prefix declares.
 */
export class MessageBoundaries {
  readonly #prefix = Buffer.alloc(FRAME_HEADER_SIZE);
  #prefixFilled = 0;
  /** Bytes of the current message's payload still to come. */
  #remaining = 0;

  /** Reads a chunk, calling `onMessage` with the length of each message that begins in it. */
  push(chunk: Uint8Array, onMessage: (length: number) => void): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#remaining > 0) {
        const skip = Math.min(this.#remaining, chunk.length - at);
        this.#remaining -= skip;
        at += skip;
        continue;
      }
      const take = Math.min(FRAME_HEADER_SIZE - this.#prefixFilled, chunk.length - at);
      this.#prefix.set(chunk.subarray(at, at + take), this.#prefixFilled);
      this.#prefixFilled += take;
      at += take;
      if (this.#prefixFilled < FRAME_HEADER_SIZE) return;
      this.#prefixFilled = 0;
      this.#remaining = this.#prefix.readUInt32BE(1);
      onMessage(this.#remaining);
    }
  }
}
