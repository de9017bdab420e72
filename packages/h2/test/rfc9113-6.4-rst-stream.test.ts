import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, REQUEST, rawClient, startServer, T, u32 } from './support/raw.js';

// RFC 9113 §6.4 RST_STREAM.

const HOLD = REQUEST.map((v, i) => (i === 5 ? '/hold' : v));

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('§6.4 RST_STREAM', () => {
  it('closes the stream at once; its owner is told the code', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, HOLD), frame(T.RST_STREAM, 0, 1, u32(8)));
    expect(await peer.alive()).toBe(true);
    expect(server.events.resets.at(-1)).toEqual({ stream: 1, code: 8, connectionError: undefined });
    expect(server.events.connections.at(-1)!.activeStreams).toBe(0);
    peer.close();
  });

  it('RST_STREAM on stream 0 is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.RST_STREAM, 0, 0, u32(8)));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('RST_STREAM on an idle stream is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.RST_STREAM, 0, 5, u32(8)));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('a length other than 4 is a connection error (FRAME_SIZE_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, HOLD), frame(T.RST_STREAM, 0, 1, Buffer.from([0, 0, 8])));
    expect((await peer.goaway())?.code).toBe(0x6);
  });
});
