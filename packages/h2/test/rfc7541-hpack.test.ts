import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompressionError, HeaderBlock, HpackDecoder, HpackEncoder } from '../src/hpack.js';
import { decodeHuffman, encodeHuffman, HuffmanError } from '../src/huffman.js';
import { F, frame, REQUEST, rawClient, startServer, T } from './support/raw.js';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

describe('HPACK decoder (RFC 7541 Appendix C)', () => {
  it('C.3: requests without Huffman coding, sharing the dynamic table', () => {
    const decoder = new HpackDecoder();
    expect(decoder.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')).fields).toEqual(
      [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
    );
    expect(decoder.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865')).fields).toEqual([
      ':method',
      'GET',
      ':scheme',
      'http',
      ':path',
      '/',
      ':authority',
      'www.example.com',
      'cache-control',
      'no-cache',
    ]);
    expect(
      decoder.decode(
        hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'),
      ).fields,
    ).toEqual([
      ':method',
      'GET',
      ':scheme',
      'https',
      ':path',
      '/index.html',
      ':authority',
      'www.example.com',
      'custom-key',
      'custom-value',
    ]);
  });

  it('C.4: requests with Huffman coding', () => {
    const decoder = new HpackDecoder();
    expect(
      decoder.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')).get(':authority'),
    ).toBe('www.example.com');
    expect(decoder.decode(hex('8286 84be 5886 a8eb 1064 9cbf')).get('cache-control')).toBe(
      'no-cache',
    );
    expect(
      decoder
        .decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))
        .get('custom-key'),
    ).toBe('custom-value');
  });

  it('evicts oldest entries when the table is full, as in C.5 (table size 256)', () => {
    const encoder = new HpackEncoder(256);
    const decoder = new HpackDecoder({ maxTableSize: 256 });
    for (let i = 0; i < 50; i++) {
      const block = new HeaderBlock([':status', '302', 'location', `https://www.example.com/${i}`]);
      expect(decoder.decode(encoder.encode(block)).fields).toEqual(block.fields);
    }
  });

  it('marks blocks over the size limit but keeps decoding them', () => {
    const decoder = new HpackDecoder({ maxHeaderListSize: 100 });
    const encoder = new HpackEncoder();
    const big = decoder.decode(
      encoder.encode(new HeaderBlock(['x-a', 'a'.repeat(200), 'x-b', 'b'])),
    );
    expect(big.oversize).toBe(true);
    // The table is still in sync: the next block refers to entries of the oversize one.
    const next = decoder.decode(encoder.encode(new HeaderBlock(['x-b', 'b'])));
    expect(next.fields).toEqual(['x-b', 'b']);
  });

  it('flags invalid field characters without losing table sync', () => {
    const decoder = new HpackDecoder();
    // Literal with indexing, new name "X-Up" (uppercase is not allowed in HTTP/2).
    const block = decoder.decode(Buffer.from([0x40, 4, ...Buffer.from('X-Up'), 1, 0x61]));
    expect(block.malformed).toMatch(/invalid characters/);
    // Index 62 now refers to the bad entry, and is refused too.
    expect(decoder.decode(Buffer.from([0xbe])).malformed).toMatch(/invalid characters/);
  });

  it('refuses broken blocks with a CompressionError', () => {
    for (const bad of ['80', 'ff', '41', '4105616263', 'bf', '3fe21f']) {
      expect(() => new HpackDecoder().decode(hex(bad)), bad).toThrow(CompressionError);
    }
  });
});

describe('HPACK encoder', () => {
  it('round-trips arbitrary octets, duplicates and never-indexed fields', () => {
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder();
    const block = new HeaderBlock([
      ':status',
      '200',
      'content-type',
      'application/grpc',
      'x-dup',
      'one',
      'x-dup',
      'two',
      'x-bin',
      Buffer.from([0, 255, 10, 13]).toString('latin1'),
      'authorization',
      'Bearer secret',
      'grpc-timeout',
      '99m',
    ]);
    block.neverIndexed = [10];
    for (let round = 0; round < 3; round++) {
      const decoded = decoder.decode(encoder.encode(block));
      expect(decoded.fields).toEqual(block.fields);
      expect(decoded.neverIndexed).toContain(10);
    }
  });

  it('sends a repeated field as a one-byte index', () => {
    const encoder = new HpackEncoder();
    const block = new HeaderBlock([':path', '/pkg.Service/Method', 'user-agent', 'grpc-node/1.0']);
    const first = encoder.encode(block).length;
    const second = encoder.encode(block).length;
    expect(first).toBeGreaterThan(10);
    expect(second).toBe(2);
  });

  it('announces a smaller table when the peer asks for one', () => {
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder();
    const block = new HeaderBlock(['x-a', 'value']);
    decoder.decode(encoder.encode(block));
    encoder.setMaxTableSize(0);
    expect(decoder.decode(encoder.encode(block)).fields).toEqual(block.fields);
  });
});

describe('Huffman code', () => {
  it('round-trips every octet', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
    const coded = encodeHuffman(all);
    expect(decodeHuffman(coded, 0, coded.length)).toBe(all);
  });

  it('refuses padding longer than 7 bits or not all ones', () => {
    expect(() => decodeHuffman(Buffer.from([0xff, 0xff]), 0, 2)).toThrow(HuffmanError);
    expect(() => decodeHuffman(Buffer.from([0x00]), 0, 1)).toThrow(HuffmanError); // '0' + 0-padding
  });
});

describe('RFC 7541 over a connection: a broken header block is a connection error (COMPRESSION_ERROR, RFC 9113 §4.3)', () => {
  const blocks: [string, number[]][] = [
    ['§6.1 an indexed field with index 0', [0x80]],
    ['§2.3.3 an index beyond the static and dynamic tables', [0x82, 0x86, 0x84, 0xbf]],
    ['§6.3 a table size update above SETTINGS_HEADER_TABLE_SIZE', [0x3f, 0xe2, 0x1f, 0x82]],
    ['§4.2 a table size update after a field', [0x82, 0x20]],
    [
      '§5.2 a Huffman string with the EOS symbol',
      [0x00, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x61],
    ],
    ['§5.2 a Huffman string padded with more than 7 bits', [0x00, 0x82, 0x1f, 0xff, 0x01, 0x61]],
    ['§5.1 an integer beyond what fits', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]],
    ['§5.2 a string longer than the block', [0x00, 0x05, 0x61]],
  ];
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.close());
  for (const [what, bytes] of blocks) {
    it(what, async () => {
      const peer = await rawClient(server.port);
      peer.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.from(bytes)));
      expect((await peer.goaway())?.code).toBe(0x9);
      expect(await peer.whenClosed()).toBe(true);
    });
  }

  it('§2.3.2 the dynamic table carries over from block to block, and to the response side', async () => {
    const peer = await rawClient(server.port);
    for (const id of [1, 3, 5])
      peer.send(peer.headers(id, [...REQUEST, 'x-repeated', 'same value'], { endStream: true }));
    for (const id of [1, 3, 5])
      expect(await peer.next((f) => f.type === T.HEADERS && f.stream === id)).toBeDefined();
    expect(peer.decodedHeaders(5)[0]!.get(':status')).toBe('200');
    expect(server.events.streams.length).toBeGreaterThanOrEqual(3);
    peer.close();
  });

  it('a header list above SETTINGS_MAX_HEADER_LIST_SIZE is decoded (table kept in step) and marked oversize', async () => {
    const seen: boolean[] = [];
    const small = await startServer({ maxHeaderListSize: 1000 }, (stream, headers) => {
      seen.push(headers.oversize);
      stream.sendHeaders(new HeaderBlock([':status', '431']), true);
    });
    const peer = await rawClient(small.port);
    peer.send(peer.headers(1, [...REQUEST, 'x-big', 'v'.repeat(2000)], { endStream: true }));
    peer.send(peer.headers(3, REQUEST, { endStream: true }));
    expect(await peer.next((f) => f.type === T.HEADERS && f.stream === 3)).toBeDefined();
    expect(seen).toEqual([true, false]);
    peer.close();
    await small.close();
  });
});
