import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeaderBlock } from '../src/index.js';
import { F, frame, REQUEST, rawClient, startServer, T } from './support/raw.js';

// RFC 9113 §6.1 DATA.

let server: Awaited<ReturnType<typeof startServer>>;
let received: Buffer[] = [];
beforeAll(async () => {
  server = await startServer({}, (stream) => {
    stream.handler = {
      onHeaders() {},
      onData(s, data, endStream) {
        received.push(Buffer.from(data));
        s.consume(data.length);
        if (endStream) s.sendHeaders(new HeaderBlock([':status', '200']), true);
      },
      onReset() {},
    };
  });
});
afterAll(() => server.close());

describe('§6.1 DATA', () => {
  it('delivers payloads without their padding, and gives the padding window back', async () => {
    received = [];
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1));
    const padded = Buffer.concat([Buffer.from([10]), Buffer.from('payload'), Buffer.alloc(10)]);
    peer.send(
      frame(T.DATA, F.PADDED, 1, padded),
      frame(T.DATA, F.PADDED | F.END_STREAM, 1, Buffer.from([0, 0x41])),
    );
    await peer.next((f) => f.type === T.HEADERS && f.stream === 1);
    expect(Buffer.concat(received).toString()).toBe('payloadA');
    peer.close();
  });

  it('DATA on stream 0 is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.DATA, 0, 0, Buffer.from('x')));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('padding as long as the payload is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), frame(T.DATA, F.PADDED, 1, Buffer.from([4, 1, 2, 3])));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('a PADDED DATA frame without even its pad length is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), frame(T.DATA, F.PADDED, 1));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('DATA on a stream not open or half-closed (local) is a stream error (STREAM_CLOSED)', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1, REQUEST, { endStream: true }),
      frame(T.DATA, F.END_STREAM, 1, Buffer.from('x')),
    );
    expect(await peer.reset(1)).toBe(0x5);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('DATA beyond the stream window is a stream error (FLOW_CONTROL_ERROR)', async () => {
    const small = await startServer({ streamWindow: 1000 });
    const peer = await rawClient(small.port);
    peer.send(
      peer.headers(
        1,
        REQUEST.map((v, i) => (i === 5 ? '/hold' : v)),
      ),
    );
    // 65,535 is in force until our SETTINGS are acknowledged (the peer ACKed them at handshake).
    await new Promise((r) => setTimeout(r, 50));
    peer.send(frame(T.DATA, 0, 1, Buffer.alloc(1001)));
    expect(await peer.reset(1)).toBe(0x3);
    expect(await peer.alive()).toBe(true);
    peer.close();
    await small.close();
  });

  it('DATA beyond the connection window is a connection error (FLOW_CONTROL_ERROR)', async () => {
    // An owner that never hands the bytes on: nothing is granted back.
    const small = await startServer(
      { connectionWindow: 65_535, streamWindow: 1 << 20, maxBufferedBytes: 0 },
      (stream) => {
        stream.handler = { onHeaders() {}, onData() {}, onReset() {} };
      },
    );
    const peer = await rawClient(small.port);
    peer.send(peer.headers(1));
    const chunk = Buffer.alloc(16_384);
    for (let i = 0; i < 4; i++) peer.send(frame(T.DATA, 0, 1, chunk));
    expect((await peer.goaway())?.code).toBe(0x3);
    await small.close();
  });
});
