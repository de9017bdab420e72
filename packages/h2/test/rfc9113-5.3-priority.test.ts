import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { F, frame, REQUEST, rawClient, startServer, T, u32 } from './support/raw.js';

// RFC 9113 §5.3: priority signals are deprecated (§5.3.2) and not acted on, but §5.3.1 still
// says "A stream cannot depend on itself. An endpoint MUST treat this as a stream error
// (Section 5.4.2) of type PROTOCOL_ERROR."

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

const priority = (dependency: number, weight = 16) =>
  Buffer.concat([u32(dependency), Buffer.from([weight])]);

describe('§5.3.1 stream dependencies', () => {
  it('HEADERS depending on its own stream is a stream error (PROTOCOL_ERROR); the connection survives', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1, REQUEST, { endStream: true, flags: F.PRIORITY, prefix: priority(1) }),
    );
    expect(await peer.reset(1)).toBe(0x1);
    expect(
      server.events.streams.some(
        (s) => s.connection === server.events.connections.at(-1) && s.id === 1,
      ),
    ).toBe(false);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('PRIORITY on an open stream depending on itself is a stream error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(
        1,
        REQUEST.map((v, i) => (i === 5 ? '/hold' : v)),
      ),
    );
    peer.send(frame(T.PRIORITY, 0, 1, priority(1)));
    expect(await peer.reset(1)).toBe(0x1);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('PRIORITY on an idle stream depending on itself is a connection error (RST_STREAM may not be sent on idle streams, §6.4)', async () => {
    const peer = await rawClient(server.port);
    peer.send(frame(T.PRIORITY, 0, 3, priority(3)));
    expect((await peer.goaway())?.code).toBe(0x1);
  });

  it('a valid priority (HEADERS flag or PRIORITY frame, exclusive bit set) is accepted and ignored', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1, REQUEST, {
        endStream: true,
        flags: F.PRIORITY,
        prefix: priority(0x80000000 | 0, 255),
      }),
    );
    peer.send(frame(T.PRIORITY, 0, 3, priority(1, 0)));
    peer.send(peer.headers(3, REQUEST, { endStream: true }));
    expect(
      await peer.next((f) => f.type === T.DATA && f.stream === 3 && (f.flags & F.END_STREAM) === 1),
    ).toBeDefined();
    expect(peer.frames.some((f) => f.type === T.RST_STREAM || f.type === T.GOAWAY)).toBe(false);
    peer.close();
  });
});
