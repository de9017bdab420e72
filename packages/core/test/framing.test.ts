import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeFrameHeader,
  encodeMessage,
  FramingError,
  type GrpcMessage,
  MessageDecoder,
  Status,
} from '../src/index.js';

function splitAt(buffer: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buffer.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(buffer.subarray(start, point));
    start = point;
  }
  chunks.push(buffer.subarray(start));
  return chunks;
}

function decodeAll(decoder: MessageDecoder, chunks: Buffer[]): GrpcMessage[] {
  const out = chunks.flatMap((chunk) => decoder.push(chunk));
  decoder.end();
  return out;
}

function failure(fn: () => unknown): FramingError {
  try {
    fn();
  } catch (error) {
    if (error instanceof FramingError) return error;
    throw error;
  }
  throw new Error('expected a FramingError');
}

const messagesArb = fc.array(
  fc.record({ compressed: fc.boolean(), data: fc.uint8Array({ maxLength: 300 }) }),
  { maxLength: 12 },
);

describe('message framing', () => {
  it('decodes exactly the encoded messages, however the stream is chunked', () => {
    fc.assert(
      fc.property(messagesArb, fc.array(fc.nat(), { maxLength: 20 }), (messages, cuts) => {
        const stream = Buffer.concat(messages.map((m) => encodeMessage(m.data, m.compressed)));
        const decoded = decodeAll(new MessageDecoder(), splitAt(stream, cuts));
        expect(
          decoded.map((m) => ({ compressed: m.compressed, data: new Uint8Array(m.data) })),
        ).toEqual(
          messages.map((m) => ({ compressed: m.compressed, data: new Uint8Array(m.data) })),
        );
      }),
      { numRuns: 10_000 },
    );
  });

  it('decodes byte by byte and many messages per chunk', () => {
    const payloads = Array.from({ length: 50 }, (_, i) => Buffer.alloc(i, i));
    const stream = Buffer.concat(payloads.map((p) => encodeMessage(p)));
    const oneChunk = decodeAll(new MessageDecoder(), [stream]);
    const bytes = decodeAll(
      new MessageDecoder(),
      [...stream].map((b) => Buffer.of(b)),
    );
    expect(oneChunk.map((m) => m.data)).toEqual(payloads);
    expect(bytes.map((m) => m.data)).toEqual(payloads);
  });

  it('writes the prefix the spec defines', () => {
    expect([...encodeMessage(Buffer.from('hi'), true)]).toEqual([1, 0, 0, 0, 2, 104, 105]);
    expect([...encodeFrameHeader(0x01020304)]).toEqual([0, 1, 2, 3, 4]);
  });

  it('rejects a message over the limit before buffering it', () => {
    const decoder = new MessageDecoder({ maxMessageSize: 1024 });
    expect(decoder.push(encodeMessage(Buffer.alloc(1024))).length).toBe(1);
    const error = failure(() => decoder.push(encodeFrameHeader(1025)));
    expect(error.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(error.details).toBe('received message larger than max (1025 vs. 1024)');
    expect(decoder.buffered).toBe(0);
    // A failed stream stays failed.
    expect(failure(() => decoder.push(encodeMessage(Buffer.alloc(1))))).toBe(error);
  });

  it('rejects oversize messages for any split of the prefix', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 65, max: 0xffffffff }),
        fc.array(fc.nat(), { maxLength: 4 }),
        (length, cuts) => {
          const decoder = new MessageDecoder({ maxMessageSize: 64 });
          const error = failure(() => {
            for (const chunk of splitAt(encodeFrameHeader(length), cuts)) decoder.push(chunk);
          });
          expect(error.code).toBe(Status.RESOURCE_EXHAUSTED);
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('rejects truncated input at any point with INTERNAL', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 5 }),
        (data, cutPoint, cuts) => {
          const frame = encodeMessage(data);
          const truncated = frame.subarray(0, 1 + (cutPoint % (frame.length - 1)));
          const error = failure(() => decodeAll(new MessageDecoder(), splitAt(truncated, cuts)));
          expect(error.code).toBe(Status.INTERNAL);
          expect(error.details).toMatch(/stream ended in the middle of a/);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('rejects an invalid flag byte', () => {
    const frame = encodeMessage(Buffer.from('x'));
    frame[0] = 2;
    const error = failure(() => new MessageDecoder().push(frame));
    expect(error.code).toBe(Status.INTERNAL);
    expect(error.details).toBe('invalid message flag byte 0x2');
  });

  it('accepts plain Uint8Arrays and empty messages', () => {
    const frame = new Uint8Array(encodeMessage(new Uint8Array(0)));
    const [message] = new MessageDecoder().push(frame);
    expect(message?.data.length).toBe(0);
  });
});
