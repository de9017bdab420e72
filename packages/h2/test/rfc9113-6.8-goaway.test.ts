import { describe, expect, it } from 'vitest';
import { type H2Stream, HeaderBlock } from '../src/index.js';
import {
  F,
  frame,
  REQUEST,
  rawClient,
  rawServerAndClient,
  recorder,
  settings,
  sleep,
  startServer,
  T,
  u32,
} from './support/raw.js';

// RFC 9113 §6.8 GOAWAY, and graceful shutdown: "A server that is attempting to gracefully shut
// down a connection SHOULD send an initial GOAWAY frame with the last stream identifier set to
// 2^31-1 and a NO_ERROR code. This signals to the client that a shutdown is imminent and that
// initiating further requests is prohibited. After allowing time for any in-flight stream
// creation (at least one round-trip time), the server MAY send another GOAWAY frame with an
// updated last stream identifier. This ensures that a connection can be cleanly shut down
// without losing requests."

/** A server whose streams the test answers itself. */
async function manualServer() {
  const open = new Map<number, H2Stream>();
  const server = await startServer({}, (stream) => {
    open.set(stream.id, stream);
    stream.handler = { onHeaders() {}, onData: (s, d) => s.consume(d.length), onReset() {} };
  });
  const answer = (id: number) => {
    const stream = open.get(id)!;
    stream.sendHeaders(new HeaderBlock([':status', '200']), false);
    stream.sendData(Buffer.from('done'), true);
  };
  return { server, open, answer };
}

const goaways = (frames: { type: number; payload: Buffer }[]) =>
  frames
    .filter((f) => f.type === T.GOAWAY)
    .map((f) => [f.payload.readUInt32BE(0), f.payload.readUInt32BE(4)]);

describe('§6.8 graceful shutdown, server role', () => {
  it('serves the streams already on the wire after the first GOAWAY; the final GOAWAY names the true last one', async () => {
    const { server, open, answer } = await manualServer();
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    await sleep(30);
    server.events.connections[0]!.close();
    const first = await peer.next((f) => f.type === T.GOAWAY);
    expect(first!.payload.readUInt32BE(0)).toBe(2 ** 31 - 1);
    const ping = await peer.next((f) => f.type === T.PING && f.flags === 0);
    // These two were sent before the client saw the GOAWAY.
    peer.send(
      peer.headers(3, REQUEST, { endStream: true }),
      peer.headers(5, REQUEST, { endStream: true }),
    );
    await sleep(30);
    expect([...open.keys()]).toEqual([1, 3, 5]);
    peer.send(frame(T.PING, F.ACK, 0, ping!.payload));
    const final = await peer.next((f) => f.type === T.GOAWAY);
    expect([final!.payload.readUInt32BE(0), final!.payload.readUInt32BE(4)]).toEqual([5, 0]);
    // A stream beyond the final GOAWAY is ignored: no response, no reset.
    peer.send(peer.headers(7, REQUEST, { endStream: true }));
    await sleep(30);
    expect([...open.keys()]).toEqual([1, 3, 5]);
    // Every stream up to 5 is served to completion; then the connection closes.
    for (const id of [5, 1, 3]) answer(id);
    expect(await peer.whenClosed()).toBe(true);
    const ended = peer.frames.filter((f) => f.type === T.DATA && (f.flags & F.END_STREAM) === 1);
    expect(ended.map((f) => f.stream)).toEqual([5, 1, 3]);
    expect(peer.frames.some((f) => f.stream === 7)).toBe(false);
    await sleep(20);
    expect(server.events.closes).toEqual([undefined]);
    await server.close();
  });

  it('without a PING ACK, the final GOAWAY follows after a second, with the last stream accepted', async () => {
    const { server, answer } = await manualServer();
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1, REQUEST, { endStream: true }),
      peer.headers(3, REQUEST, { endStream: true }),
    );
    await sleep(30);
    server.events.connections[0]!.close();
    await peer.next((f) => f.type === T.GOAWAY);
    peer.send(peer.headers(5, REQUEST, { endStream: true }));
    const final = await peer.next((f) => f.type === T.GOAWAY, 3000);
    expect(goaways([final!])).toEqual([[5, 0]]);
    for (const id of [1, 3, 5]) answer(id);
    expect(await peer.whenClosed()).toBe(true);
    await server.close();
  });

  it('a connection without streams closes right after the final GOAWAY', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    server.events.connections[0]!.close();
    const ping = await peer.next((f) => f.type === T.PING && f.flags === 0);
    peer.send(frame(T.PING, F.ACK, 0, ping!.payload));
    expect(await peer.whenClosed()).toBe(true);
    expect(goaways(peer.frames)).toEqual([
      [2 ** 31 - 1, 0],
      [0, 0],
    ]);
    await server.close();
  });

  it('destroy() sends GOAWAY with its code, the last stream accepted and the reason', async () => {
    const { server } = await manualServer();
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), peer.headers(3));
    await sleep(30);
    server.events.connections[0]!.destroy('shutting down now', 0x2);
    expect(await peer.goaway()).toEqual({ code: 0x2, lastStreamId: 3, debug: 'shutting down now' });
    expect(await peer.whenClosed()).toBe(true);
    await server.close();
  });
  it('destroy() after close() sends no second GOAWAY: streams cut then end as on a lost connection', async () => {
    const { server } = await manualServer();
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1));
    await sleep(30);
    server.events.connections[0]!.close();
    await sleep(30);
    server.events.connections[0]!.destroy('grace period over');
    expect(await peer.whenClosed()).toBe(true);
    expect(goaways(peer.frames)).toEqual([[2 ** 31 - 1, 0]]);
    await server.close();
  });

  it('a connection error during a graceful close still sends GOAWAY with its code', async () => {
    const { server } = await manualServer();
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1));
    await sleep(30);
    server.events.connections[0]!.close();
    await peer.next((f) => f.type === T.GOAWAY);
    peer.send(frame(T.WINDOW_UPDATE, 0, 0, u32(0)));
    expect(await peer.goaway()).toMatchObject({ code: 0x1, lastStreamId: 1 });
    await server.close();
  });
});

describe('§6.8 GOAWAY received', () => {
  it('client role: streams above the last stream id are refused (safe to retry), those below go on', async () => {
    let goaway: number[] = [];
    const { peer, client, closes } = await rawServerAndClient({
      onGoaway: (code, last) => (goaway = [code, last]),
    });
    peer.send(settings());
    await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK);
    const request = new HeaderBlock([
      ':method',
      'GET',
      ':scheme',
      'http',
      ':path',
      '/',
      ':authority',
      'x',
    ]);
    const handlers = [recorder(), recorder(), recorder()];
    for (const h of handlers) client.request(request, true, h);
    await peer.next((f) => f.type === T.HEADERS && f.stream === 5);
    peer.send(frame(T.GOAWAY, 0, 0, u32(1, 0)));
    await sleep(30);
    expect(goaway).toEqual([0, 1]);
    expect(client.hasCapacity()).toBe(false);
    expect(handlers[0]!.resets).toEqual([]);
    expect(handlers[1]!.resets).toEqual([
      { code: 0x7, connectionError: 'the peer refused the stream (GOAWAY)' },
    ]);
    expect(handlers[2]!.resets).toHaveLength(1);
    // Stream 1 is still served; once it ends the client closes the connection.
    peer.send(peer.headers(1, [':status', '200'], { endStream: true }));
    expect(await peer.whenClosed()).toBe(true);
    await sleep(20);
    expect(handlers[0]!.ends).toBe(1);
    expect(closes).toEqual([undefined]);
  });

  it('GOAWAY on a stream is a connection error (PROTOCOL_ERROR)', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    peer.send(frame(T.GOAWAY, 0, 1, u32(0, 0)));
    expect((await peer.goaway())?.code).toBe(0x1);
    await server.close();
  });

  it('GOAWAY shorter than 8 octets is a connection error (FRAME_SIZE_ERROR)', async () => {
    const server = await startServer();
    const peer = await rawClient(server.port);
    peer.send(frame(T.GOAWAY, 0, 0, u32(0)));
    expect((await peer.goaway())?.code).toBe(0x6);
    await server.close();
  });
});
