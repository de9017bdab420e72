import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeaderBlock } from '../src/index.js';
import {
  F,
  frame,
  PREFACE,
  rawClient,
  rawServerAndClient,
  recorder,
  settings,
  startServer,
  T,
} from './support/raw.js';

// RFC 9113 §6.5 SETTINGS, §6.5.2 defined settings, §6.5.3 synchronisation.

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer({
    settingsTimeoutMs: 300,
    maxConcurrentStreams: 7,
    streamWindow: 100_000,
    maxHeaderListSize: 9000,
  });
});
afterAll(() => server.close());

function parse(payload: Buffer): Map<number, number> {
  const out = new Map<number, number>();
  for (let p = 0; p < payload.length; p += 6)
    out.set(payload.readUInt16BE(p), payload.readUInt32BE(p + 2));
  return out;
}

describe('§6.5 SETTINGS', () => {
  it("announces our settings and acknowledges the peer's", async () => {
    const peer = await rawClient(server.port, { handshake: false });
    peer.send(PREFACE, settings([0x4, 1000], [0x99, 5]));
    const ours = await peer.next((f) => f.type === T.SETTINGS && f.flags === 0);
    expect(Object.fromEntries(parse(ours!.payload))).toEqual({ 3: 7, 4: 100_000, 6: 9000 });
    expect(await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK)).toMatchObject({
      payload: Buffer.alloc(0),
    });
    peer.close();
  });

  const errors: [string, Buffer, number][] = [
    ['a SETTINGS ACK with a payload', frame(T.SETTINGS, F.ACK, 0, Buffer.alloc(6)), 0x6],
    ['a length not a multiple of 6', frame(T.SETTINGS, 0, 0, Buffer.alloc(5)), 0x6],
    ['SETTINGS on a stream', frame(T.SETTINGS, 0, 1, Buffer.alloc(0)), 0x1],
    ['SETTINGS_ENABLE_PUSH of 2', settings([0x2, 2]), 0x1],
    ['SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1', settings([0x4, 2 ** 31]), 0x3],
    ['SETTINGS_MAX_FRAME_SIZE below 16,384', settings([0x5, 16_383]), 0x1],
    ['SETTINGS_MAX_FRAME_SIZE above 2^24-1', settings([0x5, 2 ** 24]), 0x1],
  ];
  for (const [what, bytes, code] of errors) {
    it(`${what} is a connection error (${code === 1 ? 'PROTOCOL_ERROR' : code === 3 ? 'FLOW_CONTROL_ERROR' : 'FRAME_SIZE_ERROR'})`, async () => {
      const peer = await rawClient(server.port);
      peer.send(bytes);
      expect((await peer.goaway())?.code).toBe(code);
      expect(await peer.whenClosed()).toBe(true);
    });
  }

  it('ignores unknown settings; accepts the largest legal values', async () => {
    const peer = await rawClient(server.port);
    peer.send(settings([0xabc, 1], [0x5, 2 ** 24 - 1], [0x4, 2 ** 31 - 1], [0x1, 0]));
    expect(await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK)).toBeDefined();
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('§6.5.3: our SETTINGS not acknowledged within settingsTimeoutMs is a connection error (SETTINGS_TIMEOUT)', async () => {
    const peer = await rawClient(server.port, { handshake: false });
    peer.send(PREFACE, settings());
    expect((await peer.goaway(2000))?.code).toBe(0x4);
    expect(await peer.whenClosed()).toBe(true);
  });

  it('§6.5.3: acknowledged SETTINGS stop the timer', async () => {
    const peer = await rawClient(server.port);
    await new Promise((r) => setTimeout(r, 400));
    expect(await peer.alive()).toBe(true);
    peer.close();
  });
});

describe('§6.5.2 settings the peer sends, client role', () => {
  it('SETTINGS_ENABLE_PUSH 1 from a server is a connection error (PROTOCOL_ERROR)', async () => {
    const { peer, close } = await rawServerAndClient();
    peer.send(settings([0x2, 1]));
    expect((await peer.goaway())?.code).toBe(0x1);
    close();
  });

  it('SETTINGS_MAX_CONCURRENT_STREAMS is what hasCapacity() counts against; a raise calls onCapacity', async () => {
    let capacity = 0;
    const { peer, client, close } = await rawServerAndClient({ onCapacity: () => capacity++ });
    peer.send(settings([0x3, 1]));
    await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK);
    expect(client.peerMaxStreams).toBe(1);
    client.request(
      new HeaderBlock([':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'x']),
      true,
      recorder(),
    );
    expect(client.hasCapacity()).toBe(false);
    peer.send(settings([0x3, 2]));
    await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK);
    expect(capacity).toBe(1);
    expect(client.hasCapacity()).toBe(true);
    close();
  });

  it('SETTINGS_MAX_FRAME_SIZE lets HEADERS and DATA go out in larger frames', async () => {
    const { peer, client, close } = await rawServerAndClient();
    peer.send(settings([0x5, 40_000], [0x6, 123_456]));
    await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK);
    expect(client.peerMaxHeaderListSize).toBe(123_456);
    const stream = client.request(
      new HeaderBlock([
        ':method',
        'POST',
        ':scheme',
        'http',
        ':path',
        '/',
        ':authority',
        'x',
        'x-big',
        'v'.repeat(30_000),
      ]),
      false,
      recorder(),
    );
    peer.send(
      frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0, 1, 0, 0])),
      frame(T.WINDOW_UPDATE, 0, 1, Buffer.from([0, 1, 0, 0])),
    );
    await new Promise((r) => setTimeout(r, 20));
    stream.sendData(Buffer.alloc(35_000), true);
    const headers = await peer.next((f) => f.type === T.HEADERS);
    expect(headers!.flags & F.END_HEADERS).toBe(F.END_HEADERS);
    const data = await peer.next((f) => f.type === T.DATA);
    expect(data!.payload.length).toBe(35_000);
    close();
  });
});
