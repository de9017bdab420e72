import { describe, expect, it } from 'vitest';
import { type H2Stream, HeaderBlock } from '../src/index.js';
import {
  F,
  frame,
  REQUEST,
  rawClient,
  settings,
  sleep,
  startServer,
  T,
  u32,
} from './support/raw.js';

// RFC 9113 §6.9 WINDOW_UPDATE, §6.9.1 the flow-control window, §6.9.2 initial window size.

const HOLD = REQUEST.map((v, i) => (i === 5 ? '/hold' : v));

/** A server that answers each request with `size` bytes of body once its request ended. */
async function bodyServer(size: number) {
  const streams: H2Stream[] = [];
  const server = await startServer({}, (stream, _headers, endStream) => {
    streams.push(stream);
    stream.handler = {
      onHeaders() {},
      onData: (s, d, end) => {
        s.consume(d.length);
        if (end) answer(s);
      },
      onReset() {},
    };
    if (endStream) answer(stream);
  });
  function answer(stream: H2Stream) {
    stream.sendHeaders(new HeaderBlock([':status', '200']), false);
    stream.sendData(Buffer.alloc(size, 7), true);
  }
  return { server, streams };
}

const dataBytes = (frames: { type: number; stream: number; payload: Buffer }[], stream: number) =>
  frames
    .filter((f) => f.type === T.DATA && f.stream === stream)
    .reduce((n, f) => n + f.payload.length, 0);

describe('§6.9 WINDOW_UPDATE', () => {
  it('an increment of 0 on a stream is a stream error (PROTOCOL_ERROR)', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, HOLD), frame(T.WINDOW_UPDATE, 0, 1, u32(0)));
    expect(await peer.reset(1)).toBe(0x1);
    expect(await peer.alive()).toBe(true);
    await server.close();
  });

  it('an increment of 0 on the connection is a connection error (PROTOCOL_ERROR)', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    peer.send(frame(T.WINDOW_UPDATE, 0, 0, u32(0)));
    expect((await peer.goaway())?.code).toBe(0x1);
    await server.close();
  });

  it('a length other than 4 is a connection error (FRAME_SIZE_ERROR)', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    peer.send(frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0, 1])));
    expect((await peer.goaway())?.code).toBe(0x6);
    await server.close();
  });

  it('is accepted on a stream we closed (it may race our END_STREAM)', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    await peer.next((f) => f.type === T.DATA && (f.flags & F.END_STREAM) === 1);
    peer.send(frame(T.WINDOW_UPDATE, 0, 1, u32(100)));
    expect(await peer.alive()).toBe(true);
    expect(peer.frames.some((f) => f.type === T.RST_STREAM)).toBe(false);
    await server.close();
  });
});

describe('§6.9.1 the flow-control window', () => {
  it('a stream window above 2^31-1 is a stream error (FLOW_CONTROL_ERROR); the connection survives', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, HOLD), frame(T.WINDOW_UPDATE, 0, 1, u32(2 ** 31 - 1)));
    expect(await peer.reset(1)).toBe(0x3);
    expect(await peer.alive()).toBe(true);
    await server.close();
  });

  it('a connection window above 2^31-1 is a connection error (FLOW_CONTROL_ERROR)', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    peer.send(frame(T.WINDOW_UPDATE, 0, 0, u32(2 ** 31 - 1)));
    expect((await peer.goaway())?.code).toBe(0x3);
    await server.close();
  });

  it('sends no more DATA than the stream window allows, the rest when it grows', async () => {
    const { server } = await bodyServer(5000);
    const peer = await rawClient(server.port, { settingsFrame: settings([0x4, 1000]) });
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    await sleep(50);
    expect(dataBytes(peer.frames, 1)).toBe(1000);
    peer.send(frame(T.WINDOW_UPDATE, 0, 1, u32(1500)));
    await sleep(50);
    expect(dataBytes(peer.frames, 1)).toBe(2500);
    peer.send(frame(T.WINDOW_UPDATE, 0, 1, u32(10_000)));
    expect(
      await peer.next((f) => f.type === T.DATA && (f.flags & F.END_STREAM) === 1),
    ).toBeDefined();
    expect(dataBytes(peer.frames, 1)).toBe(5000);
    await server.close();
  });

  it('sends no more DATA than the connection window allows, across streams', async () => {
    const { server } = await bodyServer(40_000);
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1, REQUEST, { endStream: true }),
      peer.headers(3, REQUEST, { endStream: true }),
    );
    await sleep(50);
    expect(dataBytes(peer.frames, 1) + dataBytes(peer.frames, 3)).toBe(65_535);
    peer.send(frame(T.WINDOW_UPDATE, 0, 0, u32(14_465)));
    await sleep(50);
    expect(dataBytes(peer.frames, 1) + dataBytes(peer.frames, 3)).toBe(80_000);
    await server.close();
  });
  it('consume() never grants back more than was received (the peer window would overflow)', async () => {
    const server = await startServer({}, (stream) => {
      stream.handler = { onHeaders() {}, onData: (s) => s.consume(2 ** 30), onReset() {} };
    });
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), frame(T.DATA, 0, 1, Buffer.alloc(10)));
    await sleep(50);
    const updates = peer.frames.filter(
      (f) =>
        (f.type === T.WINDOW_UPDATE && f.stream !== 0) ||
        (f.type === T.WINDOW_UPDATE && f.payload.readUInt32BE(0) !== (16 << 20) - 65_535),
    );
    expect(updates).toEqual([]);
    expect(await peer.alive()).toBe(true);
    await server.close();
  });
});

describe('§6.9.2 initial flow-control window size', () => {
  it('a new SETTINGS_INITIAL_WINDOW_SIZE changes open streams by the difference, even below zero', async () => {
    const { server } = await bodyServer(3000);
    const peer = await rawClient(server.port, { settingsFrame: settings([0x4, 1000]) });
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    await sleep(50);
    expect(dataBytes(peer.frames, 1)).toBe(1000);
    // 1000 → 500: the stream's window is now -500.
    peer.send(settings([0x4, 500]));
    peer.send(frame(T.WINDOW_UPDATE, 0, 1, u32(700)));
    await sleep(50);
    expect(dataBytes(peer.frames, 1)).toBe(1200);
    // 500 → 2300: +1800.
    peer.send(settings([0x4, 2300]));
    expect(
      await peer.next((f) => f.type === T.DATA && (f.flags & F.END_STREAM) === 1),
    ).toBeDefined();
    expect(dataBytes(peer.frames, 1)).toBe(3000);
    await server.close();
  });

  it('a change that takes a stream window above 2^31-1 is a connection error (FLOW_CONTROL_ERROR)', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, HOLD), frame(T.WINDOW_UPDATE, 0, 1, u32(2 ** 31 - 1 - 65_535)));
    await sleep(30);
    peer.send(settings([0x4, 65_536]));
    expect((await peer.goaway())?.code).toBe(0x3);
    await server.close();
  });

  it('our own smaller SETTINGS_INITIAL_WINDOW_SIZE applies once acknowledged', async () => {
    const server = await startServer({ streamWindow: 10_000 }, (stream) => {
      stream.handler = { onHeaders() {}, onData() {}, onReset() {} };
    });
    const peer = await rawClient(server.port, { handshake: false });
    peer.send((await import('./support/raw.js')).PREFACE, settings());
    await peer.next((f) => f.type === T.SETTINGS && f.flags === 0);
    // Before our ACK the default 65,535 may be used…
    peer.send(peer.headers(1, HOLD), frame(T.DATA, 0, 1, Buffer.alloc(16_000)));
    await sleep(30);
    expect(peer.frames.some((f) => f.type === T.RST_STREAM)).toBe(false);
    // …after it, the stream has 10,000 − 16,000 < 0 left: one more byte is too many.
    peer.send(frame(T.SETTINGS, F.ACK, 0), frame(T.DATA, 0, 1, Buffer.alloc(1)));
    expect(await peer.reset(1)).toBe(0x3);
    await server.close();
  });

  describe('connection window given back on receipt, up to maxBufferedBytes held', () => {
    // A connection window of 65,535 (no initial update) and streams of 65,535 whose owners hold
    // every byte: without credit on receipt, two stalled streams would exhaust the connection.
    async function stalledServer(maxBufferedBytes: number) {
      const held: { stream: H2Stream; bytes: number }[] = [];
      const server = await startServer(
        { streamWindow: 65_535, connectionWindow: 65_535, maxBufferedBytes },
        (stream) => {
          stream.handler = {
            onHeaders() {},
            onData: (s, d) => {
              held.push({ stream: s, bytes: d.length });
            },
            onReset() {},
          };
        },
      );
      const release = () => {
        for (const h of held.splice(0)) h.stream.consume(h.bytes);
      };
      return { server, release };
    }
    const credit = (frames: { type: number; stream: number; payload: Buffer }[]) =>
      frames
        .filter((f) => f.type === T.WINDOW_UPDATE && f.stream === 0)
        .reduce((n, f) => n + f.payload.readUInt32BE(0), 0);
    // 48,000 bytes a stream: what fits the connection window while up to a quarter of it
    // (16,383) may wait, unacknowledged, for the next batched update.
    const chunk = Buffer.alloc(16_000);
    function stall(peer: Awaited<ReturnType<typeof rawClient>>, id: number): void {
      peer.send(peer.headers(id, HOLD));
      for (let i = 0; i < 3; i++) peer.send(frame(T.DATA, 0, id, chunk));
    }

    it('a stalled stream cannot stall the connection: its DATA is credited on receipt', async () => {
      const { server } = await stalledServer(64 << 20);
      const peer = await rawClient(server.port);
      for (let n = 1; n <= 5; n++) {
        stall(peer, 2 * n - 1);
        await expect.poll(() => credit(peer.frames)).toBeGreaterThan(n * 48_000 - 16_383);
      }
      // 240,000 bytes held for owners that hand none on, on a connection window of 65,535.
      expect(await peer.alive()).toBe(true);
      expect(peer.frames.some((f) => f.type === T.GOAWAY)).toBe(false);
      peer.close();
      await server.close();
    });

    it('beyond maxBufferedBytes the window is withheld until owners hand bytes on', async () => {
      const { server, release } = await stalledServer(100_000);
      const peer = await rawClient(server.port);
      for (let n = 1; n <= 2; n++) {
        stall(peer, 2 * n - 1);
        await expect.poll(() => credit(peer.frames)).toBeGreaterThan(n * 48_000 - 16_383);
      }
      stall(peer, 5);
      expect(await peer.alive()).toBe(true);
      // 144,000 bytes held; credit stops at the 100,000 cap.
      const atCap = credit(peer.frames);
      expect(atCap).toBeLessThanOrEqual(100_000);
      release();
      await expect.poll(() => credit(peer.frames)).toBeGreaterThan(144_000 - 16_383);
      peer.close();
      await server.close();
    });
  });
});
