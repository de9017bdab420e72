import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, frame, REQUEST, rawClient, startServer, T } from './support/raw.js';

// RFC 9113 §4: frame format (§4.1), frame size (§4.2), field section compression (§4.3).

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('§4.1 frame format', () => {
  it('ignores frames of unknown type, and unknown flags', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(0xfa, 0xff, 0, Buffer.from('extension')), frame(0xfb, 0, 1, Buffer.alloc(3)));
    peer.send(peer.headers(1, REQUEST, { endStream: true, flags: 0x10 | 0x40 }));
    expect(
      await peer.next((f) => f.type === T.DATA && f.stream === 1 && (f.flags & F.END_STREAM) === 1),
    ).toBeDefined();
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('ignores the reserved bit of the stream identifier', async () => {
    const peer = await rawClient(server.port);
    const headers = peer.headers(1, REQUEST, { endStream: true });
    headers[5]! |= 0x80;
    peer.send(headers);
    expect(await peer.next((f) => f.type === T.HEADERS && f.stream === 1)).toBeDefined();
    peer.close();
  });
});

describe('§4.2 frame size', () => {
  it('accepts a DATA frame of exactly SETTINGS_MAX_FRAME_SIZE (16,384)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), frame(T.DATA, F.END_STREAM, 1, Buffer.alloc(16_384)));
    expect(await peer.next((f) => f.type === T.HEADERS && f.stream === 1)).toBeDefined();
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('a frame larger than SETTINGS_MAX_FRAME_SIZE is a connection error (FRAME_SIZE_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), frame(T.DATA, 0, 1, Buffer.alloc(16_385)));
    expect((await peer.goaway())?.code).toBe(0x6);
    expect(await peer.whenClosed()).toBe(true);
  });

  it('a frame header announcing a large frame is refused before its payload arrives', async () => {
    const peer = await rawClient(server.port);
    peer.send(Buffer.from([0x10, 0, 0, T.HEADERS, 0x4, 0, 0, 0, 1]));
    expect((await peer.goaway())?.code).toBe(0x6);
  });
});

describe('§4.3 field section compression and decompression', () => {
  it('an undecodable header block is a connection error (COMPRESSION_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      frame(
        T.HEADERS,
        F.END_HEADERS | F.END_STREAM,
        1,
        Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      ),
    );
    expect((await peer.goaway())?.code).toBe(0x9);
    expect(await peer.whenClosed()).toBe(true);
  });

  it('a header block interleaved with another frame is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    const headers = peer.headers(1, REQUEST, { endHeaders: false });
    peer.send(headers, frame(T.DATA, 0, 1, Buffer.from('x')));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('keeps the HPACK state of a header block on a refused stream in step', async () => {
    const small = await startServer({ maxConcurrentStreams: 1 });
    const peer = await rawClient(small.port);
    // Stream 3 is refused, but its block adds entries to the dynamic table that 5 refers to.
    peer.send(
      peer.headers(
        1,
        REQUEST.map((v, i) => (i === 5 ? '/hold' : v)),
      ),
    );
    peer.send(peer.headers(3, [...REQUEST, 'x-shared', 'value-1']));
    expect(await peer.reset(3)).toBe(0x7);
    peer.send(peer.headers(5, [...REQUEST, 'x-shared', 'value-1'], { endStream: true }));
    expect(await peer.reset(5)).toBe(0x7);
    expect(await peer.alive()).toBe(true);
    peer.close();
    await small.close();
  });
});
