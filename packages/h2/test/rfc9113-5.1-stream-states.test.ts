import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeaderBlock } from '../src/index.js';
import { F, frame, REQUEST, rawClient, sleep, startServer, T, u32 } from './support/raw.js';

// RFC 9113 §5.1 stream states, §5.1.1 stream identifiers, §5.1.2 stream concurrency.

const HOLD = REQUEST.map((v, i) => (i === 5 ? '/hold' : v));

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer({ maxConcurrentStreams: 3 });
});
afterAll(() => server.close());

describe('§5.1 idle: only HEADERS and PRIORITY may be received', () => {
  const cases: [string, () => Buffer][] = [
    ['DATA', () => frame(T.DATA, F.END_STREAM, 1, Buffer.from('x'))],
    ['RST_STREAM', () => frame(T.RST_STREAM, 0, 1, u32(8))],
    ['WINDOW_UPDATE', () => frame(T.WINDOW_UPDATE, 0, 1, u32(100))],
    ['CONTINUATION', () => frame(T.CONTINUATION, F.END_HEADERS, 1, Buffer.from([0x82]))],
  ];
  for (const [name, build] of cases) {
    it(`${name} on an idle stream is a connection error (PROTOCOL_ERROR)`, async () => {
      const peer = await rawClient(server.port);
      peer.send(build());
      expect((await peer.goaway())?.code).toBe(0x1);
      expect(await peer.whenClosed()).toBe(true);
    });
  }

  it('PRIORITY on an idle stream is accepted and leaves it idle', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.PRIORITY, 0, 7, u32(0, 0x10).subarray(0, 5)));
    peer.send(peer.headers(3, REQUEST, { endStream: true }));
    expect(await peer.next((f) => f.type === T.HEADERS && f.stream === 3)).toBeDefined();
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('a server stream id (even) on the server is idle: DATA there is a connection error', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.DATA, 0, 2, Buffer.from('x')));
    expect((await peer.goaway())?.code).toBe(0x1);
  });
});

describe('§5.1 half-closed (remote): only WINDOW_UPDATE, PRIORITY and RST_STREAM may follow', () => {
  it('DATA after END_STREAM is a stream error (STREAM_CLOSED); the connection survives', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, HOLD, { endStream: true }), frame(T.DATA, 0, 1, Buffer.from('late')));
    expect(await peer.reset(1)).toBe(0x5);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('HEADERS after END_STREAM is a stream error (STREAM_CLOSED); the connection survives', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, HOLD, { endStream: true }));
    peer.send(peer.headers(1, ['x-trailer', '1'], { endStream: true }));
    expect(await peer.reset(1)).toBe(0x5);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('WINDOW_UPDATE, PRIORITY and RST_STREAM are accepted', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, HOLD, { endStream: true }));
    peer.send(
      frame(T.WINDOW_UPDATE, 0, 1, u32(1000)),
      frame(T.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 16])),
    );
    expect(await peer.alive()).toBe(true);
    expect(peer.frames.some((f) => f.type === T.RST_STREAM)).toBe(false);
    peer.send(frame(T.RST_STREAM, 0, 1, u32(8)));
    expect(await peer.alive()).toBe(true);
    peer.close();
  });
});

describe('§5.1 closed', () => {
  it("after the peer's RST_STREAM, DATA is a stream error (STREAM_CLOSED)", async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1),
      frame(T.RST_STREAM, 0, 1, u32(8)),
      frame(T.DATA, 0, 1, Buffer.from('x')),
    );
    expect(await peer.reset(1)).toBe(0x5);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it("after the peer's RST_STREAM, HEADERS is a stream error (STREAM_CLOSED)", async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), frame(T.RST_STREAM, 0, 1, u32(8)));
    peer.send(peer.headers(1, ['x-trailer', '1'], { endStream: true }));
    expect(await peer.reset(1)).toBe(0x5);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it("after the peer's RST_STREAM, PRIORITY is accepted and RST_STREAM is not answered", async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), frame(T.RST_STREAM, 0, 1, u32(8)));
    peer.send(
      frame(T.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 16])),
      frame(T.RST_STREAM, 0, 1, u32(8)),
    );
    expect(await peer.alive()).toBe(true);
    expect(peer.frames.some((f) => f.type === T.RST_STREAM)).toBe(false);
    peer.close();
  });

  it('after END_STREAM both ways, DATA is a stream error (STREAM_CLOSED)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    await peer.next((f) => f.type === T.DATA && f.stream === 1 && (f.flags & F.END_STREAM) === 1);
    peer.send(frame(T.DATA, 0, 1, Buffer.from('x')));
    expect(await peer.reset(1)).toBe(0x5);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('after END_STREAM both ways, HEADERS is a connection error (STREAM_CLOSED)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    await peer.next((f) => f.type === T.DATA && f.stream === 1 && (f.flags & F.END_STREAM) === 1);
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    expect((await peer.goaway())?.code).toBe(0x5);
  });

  it('after END_STREAM both ways, WINDOW_UPDATE and RST_STREAM are accepted', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    await peer.next((f) => f.type === T.DATA && f.stream === 1 && (f.flags & F.END_STREAM) === 1);
    peer.send(frame(T.WINDOW_UPDATE, 0, 1, u32(10)), frame(T.RST_STREAM, 0, 1, u32(0)));
    expect(await peer.alive()).toBe(true);
    expect(peer.frames.some((f) => f.type === T.RST_STREAM)).toBe(false);
    peer.close();
  });

  it('frames racing our RST_STREAM are ignored (DATA still credited to the connection window)', async () => {
    // This server answers as soon as the request headers arrive and resets the rest of the
    // request with NO_ERROR (§8.1); the client's DATA and trailers were already on their way.
    const early = await startServer({}, (stream) => {
      stream.sendHeaders(new HeaderBlock([':status', '200']), true);
    });
    const peer = await rawClient(early.port);
    peer.send(peer.headers(1));
    expect(await peer.reset(1)).toBe(0x0);
    const chunk = Buffer.alloc(16_000);
    for (let i = 0; i < 6; i++) peer.send(frame(T.DATA, 0, 1, chunk));
    peer.send(peer.headers(1, ['x-trailer', '1'], { endStream: true }));
    // 96,000 bytes exceed the initial 65,535: they get in only because the connection window
    // is given back for DATA that no stream took.
    expect(await peer.alive()).toBe(true);
    expect(peer.frames.filter((f) => f.type === T.RST_STREAM)).toHaveLength(1);
    peer.close();
    await early.close();
  });
});

describe('§5.1.1 stream identifiers', () => {
  it('an even stream id from a client is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(2, REQUEST, { endStream: true }));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('a stream id lower than one already used is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(5, REQUEST, { endStream: true }),
      peer.headers(3, REQUEST, { endStream: true }),
    );
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('skipped ids are closed: HEADERS on one is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(7, REQUEST, { endStream: true }));
    await peer.next((f) => f.type === T.HEADERS && f.stream === 7);
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    expect((await peer.goaway())?.code).toBe(0x1);
  });
});

describe('§5.1.2 stream concurrency', () => {
  it('refuses streams beyond SETTINGS_MAX_CONCURRENT_STREAMS with REFUSED_STREAM', async () => {
    const peer = await rawClient(server.port);
    peer.send(...[1, 3, 5, 7].map((id) => peer.headers(id, HOLD)));
    expect(await peer.reset(7)).toBe(0x7);
    expect(peer.frames.filter((f) => f.type === T.RST_STREAM).map((f) => f.stream)).toEqual([7]);
    expect(server.events.connections.at(-1)!.activeStreams).toBe(3);
    peer.close();
  });

  it('refused and malformed streams never change the count: the limit holds exactly after many', async () => {
    const peer = await rawClient(server.port);
    peer.send(...[1, 3, 5].map((id) => peer.headers(id, HOLD)));
    // 20 refused, 20 malformed (no :path), interleaved.
    let id = 7;
    for (let i = 0; i < 20; i++) {
      peer.send(peer.headers(id, HOLD));
      peer.send(peer.headers(id + 2, REQUEST.slice(0, 4)));
      id += 4;
    }
    await sleep(100);
    const connection = server.events.connections.at(-1)!;
    expect(connection.activeStreams).toBe(3);
    // One stream ends; exactly one more may open, and the next is refused again.
    peer.send(frame(T.RST_STREAM, 0, 1, u32(8)));
    peer.send(peer.headers(id, HOLD), peer.headers(id + 2, HOLD));
    expect(await peer.reset(id + 2)).toBe(0x7);
    expect(peer.frames.some((f) => f.type === T.RST_STREAM && f.stream === id)).toBe(false);
    expect(connection.activeStreams).toBe(3);
    peer.close();
  });
});
