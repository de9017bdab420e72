import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type H2Options, HeaderBlock } from '../src/index.js';
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

// Flood limits: each ends the connection with GOAWAY(ENHANCE_YOUR_CALM), and the server goes on
// serving other connections. Frames are sent raw, in bulk, as an attacker would.

const HOLD = REQUEST.map((v, i) => (i === 5 ? '/hold' : v));
const EYC = 0xb;

async function attack(
  options: H2Options,
  build: (peer: Awaited<ReturnType<typeof rawClient>>) => Buffer[],
) {
  const server = await startServer(options);
  const peer = await rawClient(server.port);
  peer.send(...build(peer));
  const goaway = await peer.goaway(3000);
  const closed = await peer.whenClosed();
  // Another client on the same server is served as usual.
  const healthy = await rawClient(server.port);
  healthy.send(healthy.headers(1, REQUEST, { endStream: true }));
  const served = await healthy.next((f) => f.type === T.DATA && (f.flags & F.END_STREAM) === 1);
  healthy.close();
  await server.close();
  return { goaway, closed, served: served !== undefined, peer, server };
}

function repeat(n: number, make: (i: number) => Buffer): Buffer[] {
  return Array.from({ length: n }, (_, i) => make(i));
}

describe('CONTINUATION floods (CVE-2024-27316)', () => {
  it('endless empty CONTINUATION frames: GOAWAY(ENHANCE_YOUR_CALM) after maxContinuationFrames', async () => {
    const { goaway, closed, served } = await attack({}, (peer) => [
      peer.headers(1, REQUEST, { endHeaders: false }),
      ...repeat(10_000, () => frame(T.CONTINUATION, 0, 1)),
    ]);
    expect(goaway).toMatchObject({ code: EYC, debug: 'more than 16 CONTINUATION frames' });
    expect(closed).toBe(true);
    expect(served).toBe(true);
  });

  it('1-byte CONTINUATION frames: GOAWAY(ENHANCE_YOUR_CALM)', async () => {
    const { goaway } = await attack({}, (peer) => [
      peer.headers(1, REQUEST, { endHeaders: false }),
      ...repeat(10_000, () => frame(T.CONTINUATION, 0, 1, Buffer.from([0x40]))),
    ]);
    expect(goaway?.code).toBe(EYC);
  });

  it('without the frame limit, the byte limit (maxHeaderBlockBytes) still ends a 1-byte flood', async () => {
    const { goaway } = await attack(
      { maxContinuationFrames: Number.POSITIVE_INFINITY, maxHeaderBlockBytes: 4096 },
      (peer) => [
        peer.headers(1, REQUEST, { endHeaders: false }),
        ...repeat(10_000, () => frame(T.CONTINUATION, 0, 1, Buffer.from([0x40]))),
      ],
    );
    expect(goaway).toMatchObject({ code: EYC, debug: 'header block larger than 4096 bytes' });
  });

  it('empty CONTINUATION frames allocate nothing each: 200,000 of them leave the heap as it was', async () => {
    const server = await startServer({ maxContinuationFrames: Number.POSITIVE_INFINITY });
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, REQUEST, { endStream: true, endHeaders: false }));
    const empty = frame(T.CONTINUATION, 0, 1);
    const burst = Buffer.concat(repeat(10_000, () => empty));
    await sleep(20);
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => peer.socket.write(burst, () => resolve()));
    }
    await sleep(100);
    const grown = process.memoryUsage().heapUsed - before;
    // Each Buffer kept per frame would hold ~100 bytes of heap: 20 MB for 200,000 frames.
    expect(grown).toBeLessThan(8 << 20);
    peer.send(frame(T.CONTINUATION, F.END_HEADERS, 1));
    expect(await peer.next((f) => f.type === T.HEADERS && f.stream === 1, 3000)).toBeDefined();
    peer.close();
    await server.close();
  });

  it('a header block that does not end within headerBlockTimeoutMs: GOAWAY(ENHANCE_YOUR_CALM)', async () => {
    const { goaway } = await attack({ headerBlockTimeoutMs: 200 }, (peer) => [
      peer.headers(1, REQUEST, { endHeaders: false }),
    ]);
    expect(goaway).toMatchObject({ code: EYC, debug: 'a header block did not end within 200 ms' });
  });
});

describe('control-frame floods', () => {
  it('PING flood: GOAWAY(ENHANCE_YOUR_CALM) past maxPingsPerSecond, and at most that many ACKs', async () => {
    const { goaway, peer } = await attack({ maxPingsPerSecond: 100 }, () =>
      repeat(5000, () => frame(T.PING, 0, 0, Buffer.alloc(8))),
    );
    expect(goaway).toMatchObject({ code: EYC, debug: 'more than 100 PINGs a second' });
    expect(peer.frames.filter((f) => f.type === T.PING).length).toBeLessThanOrEqual(100);
  });

  it('SETTINGS flood: GOAWAY(ENHANCE_YOUR_CALM) past maxSettingsPerSecond', async () => {
    const { goaway } = await attack({}, () => repeat(1000, () => settings([0x4, 65_535])));
    expect(goaway).toMatchObject({ code: EYC, debug: 'more than 100 SETTINGS a second' });
  });

  it('empty DATA flood: GOAWAY(ENHANCE_YOUR_CALM) past maxEmptyFramesPerSecond', async () => {
    const { goaway } = await attack({}, (peer) => [
      peer.headers(1, HOLD),
      ...repeat(5000, () => frame(T.DATA, 0, 1)),
    ]);
    expect(goaway).toMatchObject({ code: EYC, debug: 'more than 1000 empty frames a second' });
  });

  it('PRIORITY and unknown-frame floods count as empty frames', async () => {
    const priority = Buffer.concat([u32(0), Buffer.from([16])]);
    const a = await attack({}, () =>
      repeat(5000, (i) => frame(T.PRIORITY, 0, 2 * i + 1, priority)),
    );
    expect(a.goaway?.code).toBe(EYC);
    const b = await attack({}, () => repeat(5000, () => frame(0xee, 0, 0, Buffer.alloc(4))));
    expect(b.goaway?.code).toBe(EYC);
  });
});

describe('reset floods (CVE-2023-44487, rapid reset)', () => {
  it("the client's own resets: GOAWAY(ENHANCE_YOUR_CALM) past maxResetsPerSecond", async () => {
    const { goaway, server } = await attack({}, (peer) =>
      repeat(1100, (i) =>
        Buffer.concat([peer.headers(2 * i + 1, HOLD), frame(T.RST_STREAM, 0, 2 * i + 1, u32(8))]),
      ),
    );
    expect(goaway).toMatchObject({ code: EYC, debug: 'more than 1000 stream resets a second' });
    expect(server.events.streams.length).toBeLessThanOrEqual(1002); // 1,001 of its, 1 healthy
  });

  it('resets we send for its errors count too ("made you reset": WINDOW_UPDATE of 0)', async () => {
    const { goaway } = await attack({}, (peer) =>
      repeat(1100, (i) =>
        Buffer.concat([
          peer.headers(2 * i + 1, HOLD),
          frame(T.WINDOW_UPDATE, 0, 2 * i + 1, u32(0)),
        ]),
      ),
    );
    expect(goaway?.code).toBe(EYC);
  });

  it('so do refused streams beyond SETTINGS_MAX_CONCURRENT_STREAMS', async () => {
    const { goaway, server } = await attack({ maxConcurrentStreams: 1 }, (peer) =>
      repeat(1100, (i) => peer.headers(2 * i + 1, HOLD)),
    );
    expect(goaway?.code).toBe(EYC);
    expect(server.events.streams.length).toBe(2); // the attacker's first stream, the healthy one
  });

  it('malformed requests too', async () => {
    const { goaway } = await attack({}, (peer) =>
      repeat(1100, (i) => peer.headers(2 * i + 1, REQUEST.slice(0, 4), { endStream: true })),
    );
    expect(goaway?.code).toBe(EYC);
  });

  it('a busy but honest client (1000 streams served, none reset) is not cut', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    for (let i = 0; i < 10; i++) {
      peer.send(
        ...repeat(100, (j) => peer.headers(2 * (100 * i + j) + 1, REQUEST, { endStream: true })),
      );
      await peer.next(
        (f) =>
          f.type === T.DATA &&
          f.stream === 2 * (100 * i + 99) + 1 &&
          (f.flags & F.END_STREAM) === 1,
      );
    }
    expect(await peer.alive()).toBe(true);
    peer.close();
    await server.close();
  });
});

describe('a peer that does not read', () => {
  it('is not read from while our output to it is over maxQueuedOutputBytes: PINGs queue in its socket, not in ours', async () => {
    const server = await startServer({
      maxQueuedOutputBytes: 64 << 10,
      maxPingsPerSecond: Number.POSITIVE_INFINITY,
    });
    const peer = await rawClient(server.port);
    peer.socket.pause(); // it never reads again
    const pings = Buffer.concat(repeat(4000, () => frame(T.PING, 0, 0, Buffer.alloc(8))));
    const serverSocket = server.events.connections[0]!.socket as Socket;
    let peak = 0;
    const pump = async (ms: number, until?: () => boolean) => {
      const end = Date.now() + ms;
      while (Date.now() < end && !until?.()) {
        peer.socket.write(pings);
        peak = Math.max(peak, serverSocket.writableLength);
        await sleep(5);
      }
    };
    // Once the kernel's buffers are full, the server's ACKs queue up; past the limit it stops
    // reading.
    await pump(8000, () => serverSocket.isPaused());
    expect(serverSocket.isPaused()).toBe(true);
    await pump(100);
    const read = serverSocket.bytesRead;
    await pump(300);
    expect(serverSocket.bytesRead).toBe(read);
    expect(peak).toBeLessThan((64 << 10) + (64 << 10));
    expect(server.events.connections[0]!.closed).toBe(false);
    peer.close();
    await server.close();
  });

  it('a large response to a peer with a large window but a full socket stays at maxQueuedOutputBytes', async () => {
    const big = Buffer.alloc(8 << 20, 1);
    const server = await startServer({ maxQueuedOutputBytes: 256 << 10 }, (stream) => {
      stream.sendHeaders(new HeaderBlock([':status', '200']), false);
      stream.sendData(big, true);
    });
    const peer = await rawClient(server.port, { settingsFrame: settings([0x4, 2 ** 31 - 1]) });
    peer.send(frame(T.WINDOW_UPDATE, 0, 0, u32(2 ** 31 - 1 - 65_535)));
    peer.socket.pause();
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    await sleep(300);
    const serverSocket = server.events.connections[0]!.socket as Socket;
    expect(serverSocket.writableLength).toBeLessThan((256 << 10) + (64 << 10));
    // Once it reads, all of it arrives.
    peer.socket.resume();
    expect(
      await peer.next((f) => f.type === T.DATA && (f.flags & F.END_STREAM) === 1, 10_000),
    ).toBeDefined();
    const received = peer.frames
      .filter((f) => f.type === T.DATA)
      .reduce((n, f) => n + f.payload.length, 0);
    expect(received).toBe(big.length);
    peer.close();
    await server.close();
  });
});

describe('idle connections', () => {
  it('a connection without streams for idleTimeoutMs is closed with GOAWAY(NO_ERROR)', async () => {
    const server = await startServer({ idleTimeoutMs: 200 });
    const peer = await rawClient(server.port);
    const started = Date.now();
    const ping = await peer.next((f) => f.type === T.PING && f.flags === 0, 2000);
    peer.send(frame(T.PING, F.ACK, 0, ping!.payload));
    expect(await peer.whenClosed()).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    const goaways = peer.frames
      .filter((f) => f.type === T.GOAWAY)
      .map((f) => f.payload.readUInt32BE(4));
    expect(goaways).toEqual([0, 0]);
    await server.close();
  });

  it('a connection with a stream open is not idle', async () => {
    const server = await startServer({ idleTimeoutMs: 200 });
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, HOLD));
    await sleep(500);
    expect(peer.frames.some((f) => f.type === T.GOAWAY)).toBe(false);
    expect(await peer.alive()).toBe(true);
    peer.close();
    await server.close();
  });
});
