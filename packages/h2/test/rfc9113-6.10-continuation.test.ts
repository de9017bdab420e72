import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, frame, REQUEST, rawClient, startServer, T } from './support/raw.js';

// RFC 9113 §6.10 CONTINUATION (the flood limits are in floods.test.ts).

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

function split(peer: Awaited<ReturnType<typeof rawClient>>, stream: number, parts: number) {
  const block = peer
    .headers(stream, [...REQUEST, 'x-pad', 'p'.repeat(200)], { endStream: true })
    .subarray(9);
  const size = Math.ceil(block.length / parts);
  const frames = [];
  for (let i = 0; i < parts; i++) {
    const piece = block.subarray(i * size, (i + 1) * size);
    const last = i === parts - 1;
    frames.push(
      frame(
        i === 0 ? T.HEADERS : T.CONTINUATION,
        (i === 0 ? F.END_STREAM : 0) | (last ? F.END_HEADERS : 0),
        stream,
        piece,
      ),
    );
  }
  return frames;
}

describe('§6.10 CONTINUATION', () => {
  it('continues a header block, including empty fragments', async () => {
    const peer = await rawClient(server.port);
    const frames = split(peer, 1, 4);
    peer.send(frames[0]!, frame(T.CONTINUATION, 0, 1), ...frames.slice(1));
    const response = await peer.next((f) => f.type === T.HEADERS && f.stream === 1);
    expect(peer.decoder.decode(response!.payload).get(':status')).toBe('200');
    peer.close();
  });

  it('CONTINUATION without a header block in progress is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1, REQUEST, { endStream: true }));
    await peer.next((f) => f.type === T.HEADERS);
    peer.send(frame(T.CONTINUATION, F.END_HEADERS, 1, Buffer.from([0x82])));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('CONTINUATION on another stream than its HEADERS is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    const [first, second] = split(peer, 1, 2);
    const moved = Buffer.from(second!);
    moved.writeUInt32BE(3, 5);
    peer.send(first!, moved);
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('any other frame inside a header block is a connection error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    const [first, second] = split(peer, 1, 2);
    peer.send(first!, frame(T.PING, 0, 0, Buffer.alloc(8)), second!);
    expect((await peer.goaway())?.code).toBe(0x1);
  });
});
