import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, frame, REQUEST, rawClient, startServer, T, u32 } from './support/raw.js';

// RFC 9113 §6.2 HEADERS.

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('§6.2 HEADERS', () => {
  it('opens a stream; padding and priority fields are skipped', async () => {
    const peer = await rawClient(server.port);
    const prefix = Buffer.concat([Buffer.from([3]), u32(0), Buffer.from([16])]);
    const headers = peer.headers(1, REQUEST, {
      endStream: true,
      flags: F.PADDED | F.PRIORITY,
      prefix,
    });
    const padded = Buffer.concat([headers, Buffer.alloc(3)]);
    padded.writeUIntBE(padded.length - 9, 0, 3);
    peer.send(padded);
    const response = await peer.next((f) => f.type === T.HEADERS && f.stream === 1);
    expect(peer.decoder.decode(response!.payload).get(':status')).toBe('200');
    peer.close();
  });

  it('HEADERS on stream 0 is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(0, REQUEST, { endStream: true }));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('padding longer than what remains is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1, REQUEST, { endStream: true, flags: F.PADDED, prefix: Buffer.from([255]) }),
    );
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('a PRIORITY flag without room for its 5 octets is a connection error (FRAME_SIZE_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.HEADERS, F.END_HEADERS | F.PRIORITY, 1, Buffer.from([0, 0])));
    expect((await peer.goaway())?.code).toBe(0x6);
  });

  it('a block of HEADERS + CONTINUATION is decoded as one', async () => {
    const peer = await rawClient(server.port);
    const whole = peer.headers(1, [...REQUEST, 'x-big', 'v'.repeat(3000)], {
      endStream: true,
      endHeaders: false,
    });
    const block = whole.subarray(9);
    const first = frame(T.HEADERS, F.END_STREAM, 1, block.subarray(0, 1000));
    const second = frame(T.CONTINUATION, 0, 1, block.subarray(1000, 2000));
    const third = frame(T.CONTINUATION, F.END_HEADERS, 1, block.subarray(2000));
    peer.send(first, second, third);
    expect(await peer.next((f) => f.type === T.HEADERS && f.stream === 1)).toBeDefined();
    peer.close();
  });
});
