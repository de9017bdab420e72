import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeaderBlock } from '../src/index.js';
import {
  F,
  frame,
  rawClient,
  rawServerAndClient,
  recorder,
  settings,
  startServer,
  T,
  u32,
} from './support/raw.js';

// RFC 9113 §6.6 PUSH_PROMISE and §8.4: push is disabled (the client sends SETTINGS_ENABLE_PUSH
// 0), so a PUSH_PROMISE is a connection error of type PROTOCOL_ERROR in either role.

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('§6.6 PUSH_PROMISE', () => {
  it('from a client is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      frame(T.PUSH_PROMISE, F.END_HEADERS, 1, Buffer.concat([u32(2), Buffer.from([0x82])])),
    );
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('from a server, to a client that disabled push, is a connection error (PROTOCOL_ERROR)', async () => {
    const { peer, client, close } = await rawServerAndClient();
    peer.send(settings());
    await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK);
    const r = recorder();
    client.request(
      new HeaderBlock([':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'x']),
      true,
      r,
    );
    await peer.next((f) => f.type === T.HEADERS);
    peer.send(
      frame(T.PUSH_PROMISE, F.END_HEADERS, 1, Buffer.concat([u32(2), Buffer.from([0x82])])),
    );
    expect((await peer.goaway())?.code).toBe(0x1);
    expect(r.resets[0]?.connectionError).toMatch(/PUSH_PROMISE/);
    close();
  });
});
