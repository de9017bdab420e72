import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeaderBlock } from '../src/index.js';
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
} from './support/raw.js';

// RFC 9113 §8.1 HTTP message framing: a head, DATA, and trailers that end the stream and carry
// no pseudo-header; §8.1.1 "A request or response is also malformed if the value of a
// content-length header field does not equal the sum of the DATA frame payload lengths";
// malformed messages are stream errors of type PROTOCOL_ERROR. §8.3 request/response heads.

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

const withLength = (n: string) => [...REQUEST, 'content-length', n];

describe('§8.1.1 content-length, server role', () => {
  it('DATA matching content-length is served', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1, withLength('6')),
      frame(T.DATA, 0, 1, Buffer.from('abc')),
      frame(T.DATA, F.END_STREAM, 1, Buffer.from('def')),
    );
    expect(await peer.next((f) => f.type === T.HEADERS && f.stream === 1)).toBeDefined();
    peer.close();
  });

  const malformed: [string, (p: Awaited<ReturnType<typeof rawClient>>) => Buffer[]][] = [
    [
      'less DATA than content-length',
      (p) => [p.headers(1, withLength('10')), frame(T.DATA, F.END_STREAM, 1, Buffer.from('short'))],
    ],
    [
      'more DATA than content-length',
      (p) => [p.headers(1, withLength('2')), frame(T.DATA, 0, 1, Buffer.from('abc'))],
    ],
    [
      'more DATA over several frames',
      (p) => [
        p.headers(1, withLength('4')),
        frame(T.DATA, 0, 1, Buffer.from('ab')),
        frame(T.DATA, 0, 1, Buffer.from('abc')),
      ],
    ],
    [
      'a content-length with END_STREAM on HEADERS',
      (p) => [p.headers(1, withLength('1'), { endStream: true })],
    ],
    [
      'trailers before content-length was reached',
      (p) => [
        p.headers(1, withLength('5')),
        frame(T.DATA, 0, 1, Buffer.from('ab')),
        p.headers(1, ['x-t', '1'], { endStream: true }),
      ],
    ],
    [
      'a content-length that is not a number',
      (p) => [p.headers(1, withLength('1x'), { endStream: true })],
    ],
    [
      'two different content-length values',
      (p) => [p.headers(1, [...withLength('1'), 'content-length', '2'])],
    ],
  ];
  for (const [what, build] of malformed) {
    it(`${what} is a stream error (PROTOCOL_ERROR)`, async () => {
      const peer = await rawClient(server.port);
      peer.send(...build(peer));
      expect(await peer.reset(1)).toBe(0x1);
      expect(peer.frames.some((f) => f.type === T.HEADERS && f.stream === 1)).toBe(false);
      expect(await peer.alive()).toBe(true);
      peer.close();
    });
  }
});

describe('§8.1 trailers, server role', () => {
  it('request trailers end the stream', async () => {
    const peer = await rawClient(server.port);
    peer.send(
      peer.headers(1),
      frame(T.DATA, 0, 1, Buffer.from('x')),
      peer.headers(1, ['x-checksum', 'abc'], { endStream: true }),
    );
    expect(await peer.next((f) => f.type === T.HEADERS && f.stream === 1)).toBeDefined();
    peer.close();
  });

  it('a second HEADERS without END_STREAM is a stream error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), peer.headers(1, ['x-trailer', '1']));
    expect(await peer.reset(1)).toBe(0x1);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });

  it('a pseudo-header field in trailers is a stream error (PROTOCOL_ERROR)', async () => {
    const peer = await rawClient(server.port);
    peer.send(peer.headers(1), peer.headers(1, [':path', '/again'], { endStream: true }));
    expect(await peer.reset(1)).toBe(0x1);
    expect(await peer.alive()).toBe(true);
    peer.close();
  });
});

describe('§8.3.1 request heads', () => {
  const heads: [string, string[]][] = [
    ['no :path', REQUEST.slice(0, 4)],
    ['an unknown pseudo-header', [':protocol', 'x', ...REQUEST]],
    ['a pseudo-header after a regular field', [...REQUEST, ':authority', 'y']],
    ['an uppercase field name', [...REQUEST, 'X-Upper', '1']],
    ['a connection-specific field', [...REQUEST, 'connection', 'keep-alive']],
    ['te other than trailers', [...REQUEST, 'te', 'gzip']],
    ['a response pseudo-header', [':status', '200', ...REQUEST]],
    ['an empty :path', REQUEST.map((v, i) => (i === 5 ? '' : v))],
    ['a duplicate :method', [':method', 'GET', ...REQUEST]],
    ['a field value with a newline', [...REQUEST, 'x-bad', 'a\nb']],
  ];
  for (const [what, fields] of heads) {
    it(`${what} is a stream error (PROTOCOL_ERROR)`, async () => {
      const peer = await rawClient(server.port);
      peer.send(peer.headers(1, fields, { endStream: true }));
      expect(await peer.reset(1)).toBe(0x1);
      expect(await peer.alive()).toBe(true);
      peer.close();
    });
  }
});

describe('§8.1 responses, client role', () => {
  async function call(
    request: string[] = [':method', 'POST', ':scheme', 'http', ':path', '/', ':authority', 'x'],
  ) {
    const { peer, client, close } = await rawServerAndClient();
    peer.send(settings());
    await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK);
    const r = recorder();
    client.request(new HeaderBlock(request), true, r);
    await peer.next((f) => f.type === T.HEADERS);
    return { peer, r, close };
  }

  it('skips 1xx responses; delivers the final response, DATA and trailers', async () => {
    const { peer, r, close } = await call();
    peer.send(
      peer.headers(1, [':status', '103', 'link', '</a>']),
      peer.headers(1, [':status', '200']),
    );
    peer.send(
      frame(T.DATA, 0, 1, Buffer.from('body')),
      peer.headers(1, ['grpc-status', '0'], { endStream: true }),
    );
    await sleep(30);
    expect(r.headers.map((h) => h.fields)).toEqual([
      [':status', '200'],
      ['grpc-status', '0'],
    ]);
    expect(Buffer.concat(r.data).toString()).toBe('body');
    expect(r.ends).toBe(1);
    close();
  });

  const bad: [string, (p: Awaited<ReturnType<typeof call>>['peer']) => Buffer[]][] = [
    ['DATA before the response headers', () => [frame(T.DATA, F.END_STREAM, 1, Buffer.from('x'))]],
    ['a response without :status', (p) => [p.headers(1, ['content-type', 'x'])]],
    [
      'a 1xx response with END_STREAM',
      (p) => [p.headers(1, [':status', '100'], { endStream: true })],
    ],
    [
      'a request pseudo-header in a response',
      (p) => [p.headers(1, [':status', '200', ':path', '/'])],
    ],
    [
      'response DATA short of its content-length',
      (p) => [
        p.headers(1, [':status', '200', 'content-length', '9']),
        frame(T.DATA, F.END_STREAM, 1, Buffer.from('x')),
      ],
    ],
    [
      'trailers without END_STREAM',
      (p) => [p.headers(1, [':status', '200']), p.headers(1, ['grpc-status', '0'])],
    ],
    [
      'pseudo-headers in trailers',
      (p) => [
        p.headers(1, [':status', '200']),
        p.headers(1, [':status', '200'], { endStream: true }),
      ],
    ],
  ];
  for (const [what, build] of bad) {
    it(`${what} is a stream error (PROTOCOL_ERROR), and the owner is told`, async () => {
      const { peer, r, close } = await call();
      peer.send(...build(peer));
      expect(await peer.reset(1)).toBe(0x1);
      expect(r.resets).toEqual([{ code: 0x1, connectionError: undefined }]);
      expect(await peer.alive()).toBe(true);
      close();
    });
  }

  it('a 204 or a response to HEAD may declare a content-length without content', async () => {
    for (const [method, status] of [
      ['HEAD', '200'],
      ['GET', '204'],
      ['GET', '304'],
    ]) {
      const { peer, r, close } = await call([
        ':method',
        method!,
        ':scheme',
        'http',
        ':path',
        '/',
        ':authority',
        'x',
      ]);
      peer.send(
        peer.headers(1, [':status', status!, 'content-length', '100'], { endStream: true }),
      );
      await sleep(20);
      expect(r.resets).toEqual([]);
      expect(r.ends).toBe(1);
      close();
    }
  });

  it('a response that ends before the request does resets the rest of the request with CANCEL', async () => {
    const { peer, client, close } = await rawServerAndClient();
    peer.send(settings());
    await peer.next((f) => f.type === T.SETTINGS && f.flags === F.ACK);
    const r = recorder();
    const stream = client.request(
      new HeaderBlock([':method', 'POST', ':scheme', 'http', ':path', '/', ':authority', 'x']),
      false,
      r,
    );
    peer.send(peer.headers(1, [':status', '200', 'grpc-status', '0'], { endStream: true }));
    expect(await peer.reset(1)).toBe(0x8);
    expect(stream.state).toBe('closed');
    expect(client.activeStreams).toBe(0);
    close();
  });
});
