import { describe, expect, it } from 'vitest';
import { CompressionError, HeaderBlock, HpackDecoder, HpackEncoder } from '../src/hpack.js';
import { decodeHuffman, encodeHuffman, HuffmanError } from '../src/huffman.js';

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
