import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  F,
  frame,
  rawClient,
  rawServerAndClient,
  settings,
  startServer,
  T,
} from './support/raw.js';

// RFC 9113 §6.7 PING.

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('§6.7 PING', () => {
  it('is answered with an ACK carrying the same payload', async () => {
    const peer = await rawClient(server.port);
    const payload = Buffer.from('8 bytes!');
    peer.send(frame(T.PING, 0, 0, payload));
    const ack = await peer.next((f) => f.type === T.PING);
    expect(ack).toMatchObject({ flags: F.ACK, stream: 0, payload });
    peer.close();
  });

  it('an ACK is not answered', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.PING, F.ACK, 0, Buffer.alloc(8)));
    expect(await peer.alive()).toBe(true);
    expect(peer.frames.filter((f) => f.type === T.PING)).toHaveLength(1);
    peer.close();
  });

  it('a length other than 8 is a connection error (FRAME_SIZE_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.PING, 0, 0, Buffer.alloc(4)));
    expect((await peer.goaway())?.code).toBe(0x6);
  });

  it('PING on a stream is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.PING, 0, 1, Buffer.alloc(8)));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('ping() completes on the ACK of its own payload only', async () => {
    const { peer, client, close } = await rawServerAndClient();
    peer.send(settings());
    const answered: (string | undefined)[] = [];
    client.ping((error) => answered.push(error ?? 'ok'));
    const ping = await peer.next((f) => f.type === T.PING && f.flags === 0);
    // An ACK of some other payload (a stale or forged one) completes nothing.
    const other = Buffer.from(ping?.payload ?? Buffer.alloc(8));
    other.writeUInt8(other.readUInt8(7) ^ 0xff, 7);
    peer.send(frame(T.PING, F.ACK, 0, other));
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toEqual([]);
    peer.send(frame(T.PING, F.ACK, 0, ping!.payload));
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toEqual(['ok']);
    close();
  });

  it('two pings in flight are told apart by payload, even answered out of order', async () => {
    const { peer, client, close } = await rawServerAndClient();
    peer.send(settings());
    const answered: string[] = [];
    client.ping(() => answered.push('first'));
    client.ping(() => answered.push('second'));
    const a = await peer.next((f) => f.type === T.PING && f.flags === 0);
    const b = await peer.next((f) => f.type === T.PING && f.flags === 0);
    expect(a!.payload.equals(b!.payload)).toBe(false);
    peer.send(frame(T.PING, F.ACK, 0, b!.payload), frame(T.PING, F.ACK, 0, a!.payload));
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toEqual(['second', 'first']);
    close();
  });

  it('a ping still unanswered when the connection closes gets an error', async () => {
    const { peer, client } = await rawServerAndClient();
    peer.send(settings());
    const answered: (string | undefined)[] = [];
    client.ping((error) => answered.push(error));
    await peer.next((f) => f.type === T.PING);
    peer.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toHaveLength(1);
    expect(answered[0]).toBeTypeOf('string');
  });
});
