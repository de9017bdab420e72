import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  F,
  frame,
  PREFACE,
  RawPeer,
  rawClient,
  rawServerAndClient,
  settings,
  startServer,
  T,
} from './support/raw.js';

// RFC 9113 §3.4: the client's preface is the 24-octet string followed by SETTINGS; the server's
// is SETTINGS. "Clients and servers MUST treat an invalid connection preface as a connection
// error of type PROTOCOL_ERROR."

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer({ handshakeTimeoutMs: 300 });
});
afterAll(() => server.close());

async function connectRaw(): Promise<RawPeer> {
  const socket = connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  return new RawPeer(socket);
}

describe('§3.4 connection preface, server role', () => {
  it('answers the client preface with SETTINGS as its first frame, and ACKs the client SETTINGS', async () => {
    const peer = await connectRaw();
    peer.send(PREFACE, settings());
    const first = await peer.next();
    expect(first).toMatchObject({ type: T.SETTINGS, flags: 0, stream: 0 });
    expect(await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK)).toBeDefined();
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('sends nothing before the preface arrives', async () => {
    const peer = await connectRaw();
    peer.send(PREFACE.subarray(0, 10));
    expect(await peer.next(() => true, 100)).toBeUndefined();
    peer.send(PREFACE.subarray(10), settings());
    expect(await peer.next()).toMatchObject({ type: T.SETTINGS, flags: 0 });
    peer.close();
  });

  it('closes the connection on an invalid preface, without a frame', async () => {
    const peer = await connectRaw();
    peer.send(Buffer.from('INVALID CONNECTION PREFACE\r\n\r\n'));
    expect(await peer.whenClosed()).toBe(true);
    expect(peer.frames).toEqual([]);
    expect(server.events.closes.at(-1)).toMatch(/preface/);
  });

  it('answers an HTTP/1.1 request with a readable HTTP/1.1 505, then closes', async () => {
    const peer = await connectRaw();
    peer.send(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
    expect(await peer.whenClosed()).toBe(true);
    expect(peer.raw.toString('latin1')).toMatch(/^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
  });

  it('a preface followed by a frame other than SETTINGS is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await connectRaw();
    peer.send(PREFACE, frame(T.PING, 0, 0, Buffer.alloc(8)));
    expect((await peer.goaway())?.code).toBe(1);
    expect(await peer.whenClosed()).toBe(true);
  });

  it('a preface followed by a SETTINGS ACK is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await connectRaw();
    peer.send(PREFACE, frame(T.SETTINGS, F.ACK, 0));
    expect((await peer.goaway())?.code).toBe(1);
  });

  it('closes a connection that sends no preface within handshakeTimeoutMs', async () => {
    const peer = await connectRaw();
    const started = Date.now();
    expect(await peer.whenClosed(2000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(server.events.closes.at(-1)).toMatch(/no HTTP\/2 preface and SETTINGS within 300 ms/);
  });

  it('closes a connection that sends the preface but no SETTINGS within handshakeTimeoutMs', async () => {
    const peer = await connectRaw();
    peer.send(PREFACE);
    expect((await peer.goaway(2000))?.code).toBe(1);
    expect(await peer.whenClosed()).toBe(true);
  });

  it('a completed handshake is not cut by the handshake timeout', async () => {
    const peer = await rawClient(server.port);
    await new Promise((r) => setTimeout(r, 400));
    expect(await peer.alive()).toBe(true);
    peer.close();
  });
});

describe('§3.4 connection preface, client role', () => {
  it('sends the preface, then SETTINGS with ENABLE_PUSH 0, and waits for the server SETTINGS', async () => {
    let ready = false;
    const { peer, client, close } = await rawServerAndClient({ onReady: () => (ready = true) });
    const first = await peer.next();
    expect(first).toMatchObject({ type: T.SETTINGS, flags: 0 });
    const ids = [];
    for (let p = 0; p < first!.payload.length; p += 6)
      ids.push([first!.payload.readUInt16BE(p), first!.payload.readUInt32BE(p + 2)]);
    expect(ids).toContainEqual([2, 0]); // SETTINGS_ENABLE_PUSH 0
    expect(client.ready).toBe(false);
    expect(client.hasCapacity()).toBe(false);
    peer.send(settings());
    expect(await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK)).toBeDefined();
    expect(ready).toBe(true);
    expect(client.hasCapacity()).toBe(true);
    close();
  });

  it('a server whose first frame is not SETTINGS gets GOAWAY(PROTOCOL_ERROR)', async () => {
    const { peer, closes, close } = await rawServerAndClient();
    peer.send(frame(T.PING, 0, 0, Buffer.alloc(8)));
    expect((await peer.goaway())?.code).toBe(1);
    expect(closes[0]).toMatch(/first frame is not SETTINGS/);
    close();
  });
});
