import { once } from 'node:events';
import {
  createServer as createH2Server,
  connect as h2connect,
  type ServerHttp2Stream,
} from 'node:http2';
import { type AddressInfo, connect, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { H2Connection, type H2Stream, type StreamHandler } from '../src/index.js';

// The package as a proxy uses it: a server-role connection per client, a client-role
// connection to a backend, and each DATA payload passed on with `sendData(data, end, source)`,
// so that the source's window is given back only as the bytes leave (flow control end to end).
// Both ends are node:http2.

let backend: ReturnType<typeof createH2Server>;
let relay: ReturnType<typeof createServer>;
let relayPort = 0;
let upstream: H2Connection;

beforeAll(async () => {
  // The backend echoes request bodies, slowly when asked to.
  backend = createH2Server({ settings: { initialWindowSize: 1024 } });
  backend.on('session', (session) => session.on('error', () => {}));
  backend.on('stream', (stream: ServerHttp2Stream) => {
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.pipe(stream);
  });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  const socket = connect((backend.address() as AddressInfo).port, '127.0.0.1');
  upstream = new H2Connection(
    socket,
    'client',
    { onReady() {}, onGoaway() {}, onCapacity() {}, onClose() {} },
    { streamWindow: 4096, connectionWindow: 65_535 },
  );
  relay = createServer((client) => {
    new H2Connection(
      client,
      'server',
      {
        onStream(down, headers, endStream) {
          const forward: StreamHandler = {
            onHeaders(stream, block, end) {
              (stream === down ? up : down).sendHeaders(block, end);
            },
            onData(stream, data, end) {
              (stream === down ? up : down).sendData(data, end, stream);
            },
            onReset(stream, code) {
              (stream === down ? up : down).reset(code);
            },
          };
          down.handler = forward;
          const up: H2Stream = upstream.request(headers, endStream, forward);
        },
        onReady() {},
        onGoaway() {},
        onCapacity() {},
        onClose() {},
      },
      { streamWindow: 4096, connectionWindow: 65_535 },
    );
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  relayPort = (relay.address() as AddressInfo).port;
});

afterAll(() => {
  upstream.close();
  relay.close();
  backend.close();
});

describe('relaying with source windows', () => {
  it('8 MiB through windows of 1 KiB (backend) and 4 KiB (relay), to a client reading 1 KiB at a time, intact', async () => {
    const body = Buffer.alloc(8 << 20);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const session = h2connect(`http://127.0.0.1:${relayPort}`, {
      settings: { initialWindowSize: 1024 },
    });
    session.on('error', () => {});
    const stream = session.request({
      ':method': 'POST',
      ':path': '/echo',
      ':scheme': 'http',
      ':authority': 'x',
    });
    const received: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => received.push(chunk));
    const trailers = once(stream, 'trailers');
    stream.end(body);
    await once(stream, 'close');
    session.close();
    expect(Buffer.concat(received).equals(body)).toBe(true);
    expect((await trailers)[0]['grpc-status']).toBe('0');
    expect(upstream.activeStreams).toBe(0);
  });

  it('a client that does not read its response is held back in sending its request, across the relay', async () => {
    const session = h2connect(`http://127.0.0.1:${relayPort}`, {
      settings: { initialWindowSize: 1024 },
    });
    session.on('error', () => {});
    const stream = session.request({
      ':method': 'POST',
      ':path': '/echo',
      ':scheme': 'http',
      ':authority': 'x',
    });
    stream.pause();
    const chunk = Buffer.alloc(64 << 10, 1);
    let accepted = 0;
    const started = Date.now();
    // The client keeps writing; the relay takes only what the windows allow end to end.
    while (Date.now() - started < 1000) {
      if (stream.write(chunk)) accepted += chunk.length;
      else await Promise.race([once(stream, 'drain'), new Promise((r) => setTimeout(r, 50))]);
    }
    const before = accepted;
    await new Promise((r) => setTimeout(r, 300));
    expect(accepted).toBe(before);
    // Windows and socket buffers full end to end: the client's own writes wait.
    expect(stream.bufferSize).toBeGreaterThan(0);
    stream.close();
    session.destroy();
  });
});
