import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, frame, REQUEST, rawClient, startServer, T, u32 } from './support/raw.js';

// RFC 9113 §6.3 PRIORITY.

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('§6.3 PRIORITY', () => {
  it('PRIORITY on stream 0 is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.PRIORITY, 0, 0, Buffer.concat([u32(1), Buffer.from([16])])));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('a length other than 5 is a stream error (FRAME_SIZE_ERROR); the connection survives', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    peer.send(frame(T.PRIORITY, 0, 1, u32(0x80000001 >>> 0)));
    expect(await peer.reset(1)).toBe(0x6);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('is accepted on streams in any state, and changes nothing', async () => {
    const peer = await rawClient(server.port);
    const p = Buffer.concat([u32(0), Buffer.from([16])]);
    peer.send(frame(T.PRIORITY, 0, 9, p)); // idle
    peer.send(peer.headers(1, REQUEST, { endStream: true }), frame(T.PRIORITY, 0, 1, p)); // half-closed
    await peer.next((f) => f.type === T.DATA && f.stream === 1 && (f.flags & F.END_STREAM) === 1);
    peer.send(frame(T.PRIORITY, 0, 1, p)); // closed
    expect(await peer.alive()).toBe(true);
    expect(peer.frames.some((f) => f.type === T.RST_STREAM)).toBe(false);
    peer.close();
  });
});
