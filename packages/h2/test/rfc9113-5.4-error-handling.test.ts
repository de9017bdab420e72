import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, frame, REQUEST, rawClient, startServer, T, u32 } from './support/raw.js';

// RFC 9113 §5.4: a stream error (§5.4.2) ends one stream with RST_STREAM and leaves the others;
// a connection error (§5.4.1) sends GOAWAY with the last stream processed, then closes.

const HOLD = REQUEST.map((v, i) => (i === 5 ? '/hold' : v));

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('§5.4.2 stream errors', () => {
  it('reset one stream; the others on the connection go on to completion', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), peer.headers(3), peer.headers(5));
    peer.send(frame(T.WINDOW_UPDATE, 0, 3, u32(0))); // stream error on 3
    expect(await peer.reset(3)).toBe(0x1);
    peer.send(
      frame(T.DATA, F.END_STREAM, 1, Buffer.from('a')),
      frame(T.DATA, F.END_STREAM, 5, Buffer.from('b')),
    );
    expect(
      await peer.next((f) => f.type === T.DATA && f.stream === 1 && (f.flags & F.END_STREAM) === 1),
    ).toBeDefined();
    expect(
      await peer.next((f) => f.type === T.DATA && f.stream === 5 && (f.flags & F.END_STREAM) === 1),
    ).toBeDefined();
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it("the stream's owner is told with the code sent", async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, HOLD));
    peer.send(frame(T.WINDOW_UPDATE, 0, 1, u32(0x7fffffff)));
    expect(await peer.reset(1)).toBe(0x3);
    expect(server.events.resets.at(-1)).toEqual({
      stream: 1,
      code: 0x3,
      connectionError: undefined,
    });
    peer.close();
  });

  it('a RST_STREAM is never answered with a RST_STREAM', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1, HOLD),
      frame(T.RST_STREAM, 0, 1, u32(1)),
      frame(T.RST_STREAM, 0, 1, u32(1)),
    );
    expect(await peer.alive()).toBe(true);
    expect(peer.frames.some((f) => f.type === T.RST_STREAM)).toBe(false);
    expect(server.events.resets.at(-1)).toEqual({
      stream: 1,
      code: 0x1,
      connectionError: undefined,
    });
    peer.close();
  });
});

describe('§5.4.1 connection errors', () => {
  it('GOAWAY names the last stream processed, streams in flight learn why, the socket closes', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1, REQUEST, { endStream: true }),
      peer.headers(3, HOLD),
      peer.headers(5, HOLD),
    );
    await peer.next((f) => f.type === T.DATA && f.stream === 1);
    peer.send(frame(T.DATA, 0, 0, Buffer.from('x')));
    const goaway = await peer.goaway();
    expect(goaway).toMatchObject({ code: 0x1, lastStreamId: 5 });
    expect(goaway?.debug).toMatch(/DATA on stream 0/);
    expect(await peer.whenClosed()).toBe(true);
    const resets = server.events.resets.slice(-2);
    expect(resets.map((r) => r.stream).sort()).toEqual([3, 5]);
    expect(resets.every((r) => r.code === 0x8 && /DATA on stream 0/.test(r.connectionError!))).toBe(
      true,
    );
  });
});
