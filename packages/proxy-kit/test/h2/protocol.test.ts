import { connect } from 'node:http2';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { staticDiscovery } from '@switchyard/discovery';
import { HeaderBlock, HpackEncoder } from '@switchyard/h2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningProxy, startProxy } from '../../src/index.js';
import { grpcFrame, rawCall, startRawBackend } from '../support/raw-http2.js';

// The proxy's HTTP/2 engine against peers that push its edges: header blocks split over
// CONTINUATION frames, tiny flow-control windows, stream limits, and frames that break the rules.

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

/** HEADERS opening a call to `path` on stream `id`; END_HEADERS without END_STREAM: it stays open. */
function openCall(encoder: HpackEncoder, id: number, path: string): Buffer {
  const headers = new HeaderBlock([
    ':method',
    'POST',
    ':scheme',
    'http',
    ':path',
    path,
    ':authority',
    'x',
    'content-type',
    'application/grpc',
  ]);
  return frame(1, 0x4, id, Buffer.from(encoder.encode(headers)));
}

/** Sends raw bytes after the preface and an empty SETTINGS; returns the frames received. */
function rawSession(
  address: string,
  bytes: Buffer[],
  waitMs = 300,
): Promise<{ type: number; flags: number; stream: number; payload: Buffer }[]> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const frames: { type: number; flags: number; stream: number; payload: Buffer }[] = [];
    let buffered = Buffer.alloc(0);
    const socket = createConnection(Number(port), host, () => {
      socket.write(Buffer.concat([PREFACE, frame(4, 0, 0), ...bytes]));
    });
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        frames.push({
          type: buffered[3]!,
          flags: buffered[4]!,
          stream: buffered.readUInt32BE(5) & 0x7fffffff,
          payload: buffered.subarray(9, 9 + length),
        });
        buffered = buffered.subarray(9 + length);
      }
    });
    socket.on('error', () => {});
    const done = () => {
      socket.destroy();
      resolve(frames);
    };
    socket.on('close', done);
    setTimeout(done, waitMs).unref();
  });
}

function goawayCode(frames: { type: number; payload: Buffer }[]): number | undefined {
  const goaway = frames.find((f) => f.type === 7);
  return goaway?.payload.readUInt32BE(4);
}

let backend: Awaited<ReturnType<typeof startRawBackend>>;
let proxy: RunningProxy;
let address: string;

beforeAll(async () => {
  // Echoes request bodies; sends back as a response header whatever `x-echo` held.
  backend = await startRawBackend((stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if (stream.destroyed) return;
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'x-echo': headers['x-echo'] ?? '' },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.concat(chunks));
    });
  });
  proxy = await startProxy({
    listen: { address: '127.0.0.1:0', maxConcurrentStreams: 2 },
    discovery: staticDiscovery([backend.address]),
  });
  address = `127.0.0.1:${proxy.address.port}`;
});

afterAll(async () => {
  await proxy.close(500);
  await backend.close();
});

describe('header blocks', () => {
  it('assembles and emits header blocks larger than one frame (CONTINUATION) both ways', async () => {
    const value = 'v'.repeat(40_000);
    const result = await rawCall(
      address,
      { ':path': '/a/b', 'content-type': 'application/grpc', 'x-echo': value },
      grpcFrame(Buffer.from('body')),
    );
    expect(result.headers['x-echo']).toBe(value);
    expect(result.trailers?.['grpc-status']).toBe('0');
  });
});

describe('flow control', () => {
  it('respects a client window of 1 KiB while relaying 1 MiB, bytes intact', async () => {
    const body = Buffer.alloc(1 << 20);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const session = connect(`http://${address}`, { settings: { initialWindowSize: 1024 } });
    const received: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/a/b',
        'content-type': 'application/grpc',
      });
      stream.on('data', (chunk: Buffer) => received.push(chunk));
      stream.on('error', reject);
      stream.on('close', () => resolve());
      stream.end(body);
    });
    session.close();
    expect(Buffer.concat(received).equals(body)).toBe(true);
  });

  it('respects an upstream window of 1 KiB while relaying 1 MiB of request', async () => {
    const small = await startRawBackend(
      (stream) => {
        let total = 0;
        stream.on('data', (c: Buffer) => {
          total += c.length;
        });
        stream.on('end', () => {
          stream.respond(
            { ':status': 200, 'content-type': 'application/grpc' },
            { waitForTrailers: true },
          );
          stream.on('wantTrailers', () =>
            stream.sendTrailers({ 'grpc-status': '0', 'x-total': String(total) }),
          );
          stream.end();
        });
      },
      { initialWindowSize: 1024 },
    );
    const smallProxy = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery([small.address]),
    });
    try {
      const result = await rawCall(
        `127.0.0.1:${smallProxy.address.port}`,
        { ':path': '/a/b', 'content-type': 'application/grpc' },
        Buffer.alloc(1 << 20, 1),
      );
      expect(result.trailers?.['x-total']).toBe(String(1 << 20));
    } finally {
      await smallProxy.close(500);
      await small.close();
    }
  });
});

describe("the upstream's SETTINGS_MAX_CONCURRENT_STREAMS", () => {
  it('is never exceeded: the proxy opens more connections, then queues', async () => {
    let open = 0;
    let peakPerSession = 0;
    const perSession = new Map<unknown, number>();
    const limited = await startRawBackend(
      (stream) => {
        const session = stream.session;
        const now = (perSession.get(session) ?? 0) + 1;
        perSession.set(session, now);
        peakPerSession = Math.max(peakPerSession, now);
        open++;
        stream.on('close', () => {
          perSession.set(session, perSession.get(session)! - 1);
          open--;
        });
        stream.resume();
        stream.on('end', () =>
          setTimeout(() => {
            if (stream.destroyed) return;
            stream.respond(
              { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' },
              { endStream: true },
            );
          }, 200),
        );
      },
      { maxConcurrentStreams: 2 },
    );
    const limitedProxy = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery([limited.address]),
      upstream: { maxConnections: 3 },
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, () =>
          rawCall(
            `127.0.0.1:${limitedProxy.address.port}`,
            { ':path': '/a/b', 'content-type': 'application/grpc' },
            grpcFrame(Buffer.alloc(1)),
          ),
        ),
      );
      expect(results.every((r) => r.headers['grpc-status'] === '0')).toBe(true);
      expect(peakPerSession).toBe(2);
      expect(perSession.size).toBe(3); // 3 connections × 2 streams; the other calls waited
      expect(open).toBe(0);
    } finally {
      await limitedProxy.close(500);
      await limited.close();
    }
  });
});

describe('stream limits', () => {
  it('refuses streams beyond SETTINGS_MAX_CONCURRENT_STREAMS with REFUSED_STREAM', async () => {
    const encoder = new HpackEncoder();
    const frames = await rawSession(
      address,
      [1, 3, 5].map((id) => openCall(encoder, id, '/a/b')),
    );
    const resets = frames.filter((f) => f.type === 3);
    expect(resets.map((f) => [f.stream, f.payload.readUInt32BE(0)])).toEqual([[5, 7]]);
  });
});

describe('protocol violations end the connection with the right GOAWAY', () => {
  const cases: [string, Buffer, number][] = [
    ['DATA on stream 0', frame(0, 0, 0, Buffer.from('x')), 1],
    ['a frame larger than SETTINGS_MAX_FRAME_SIZE', frame(0, 0, 1, Buffer.alloc(20_000)), 6],
    [
      'an undecodable header block',
      frame(1, 0x5, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
      9,
    ],
    ['a PING of the wrong size', frame(6, 0, 0, Buffer.alloc(4)), 6],
    ['a WINDOW_UPDATE of 0', frame(8, 0, 0, Buffer.alloc(4)), 1],
  ];
  for (const [what, bytes, code] of cases) {
    it(what, async () => {
      const frames = await rawSession(address, [bytes]);
      expect(goawayCode(frames)).toBe(code);
    });
  }

  it('a client resetting streams faster than 1,000/s ("rapid reset")', async () => {
    const encoder = new HpackEncoder();
    const frames: Buffer[] = [];
    for (let id = 1; id < 2 * 1100; id += 2) {
      frames.push(openCall(encoder, id, '/hang/x'), frame(3, 0, id, Buffer.from([0, 0, 0, 8])));
    }
    expect(goawayCode(await rawSession(address, frames, 1000))).toBe(11); // ENHANCE_YOUR_CALM
  });

  it('answers PING with PING ACK and the same payload', async () => {
    const payload = Buffer.from('8 bytes!');
    const frames = await rawSession(address, [frame(6, 0, 0, payload)]);
    const ack = frames.find((f) => f.type === 6 && f.flags === 1);
    expect(ack?.payload.equals(payload)).toBe(true);
  });

  it('keeps serving other clients after all that', async () => {
    await sleep(50);
    const result = await rawCall(
      address,
      { ':path': '/a/b', 'content-type': 'application/grpc' },
      grpcFrame(Buffer.from('ok')),
    );
    expect(result.trailers?.['grpc-status']).toBe('0');
  });
});
