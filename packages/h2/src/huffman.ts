/**
 * HPACK's static Huffman code (RFC 7541 Appendix B) and a table-driven decoder that consumes
 * four bits per step, the technique of nghttp2: decoding costs one table lookup per nibble
 * instead of a tree walk per bit.
 */

// Code of each symbol 0–255 and of EOS (256), most significant bit first, and its length in bits.
const CODES = [
  0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7, 0xfffffe8,
  0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec, 0xfffffed,
  0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3, 0xffffff4,
  0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb, 0x14, 0x3f8, 0x3f9,
  0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa, 0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18, 0x0, 0x1,
  0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc, 0x1ffa,
  0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b,
  0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22,
  0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26, 0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7, 0x2b,
  0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd,
  0xffffffc, 0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9, 0x3fffd6,
  0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf, 0xffffec, 0xffffed,
  0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3, 0x7fffe4, 0x1fffdc, 0x3fffd8,
  0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef, 0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc,
  0x7fffe8, 0x7fffe9, 0x1fffde, 0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf,
  0x7fffeb, 0x7fffec, 0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee,
  0x7fffef, 0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
  0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec, 0x3ffffe2,
  0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed, 0x7fff2, 0x1fffe3,
  0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2, 0x1fffe4, 0x1fffe5, 0x3ffffe8,
  0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5, 0xfffec, 0xfffff3, 0xfffed, 0x1fffe6,
  0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3, 0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4,
  0xfffff5, 0x3ffffea, 0x7ffff4, 0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8,
  0x7ffffe9, 0x7ffffea, 0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0,
  0x3ffffee, 0x3fffffff,
];
const LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
  28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5,
  6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6,
  7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23,
  23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22,
  22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22,
  23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27,
  27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25,
  24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS = 256;
// Transition flags, packed with the next state and the emitted symbol into one Int32.
const EMIT = 1 << 9;
const FAIL = 1 << 10;

/**
 * `TRANSITIONS[state * 16 + nibble]`: bits 0–8 next state, EMIT + bits 11–18 symbol, FAIL when
 * the nibble completes EOS (a decoding error, RFC 7541 §5.2).
 */
const TRANSITIONS = new Int32Array(256 * 16);
/** States in which the input may end: only ones seen since the last symbol, fewer than 8. */
const ACCEPTING = new Uint8Array(256);

(function build() {
  // Binary tree of the code: internal nodes are the decoder's states (255 of them).
  const children: number[][] = [[-1, -1]];
  const leaf = new Map<number, number>(); // `node * 2 + bit` → symbol
  for (let symbol = 0; symbol <= EOS; symbol++) {
    const code = CODES[symbol] as number;
    const length = LENGTHS[symbol] as number;
    let node = 0;
    for (let i = length - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      if (i === 0) {
        leaf.set(node * 2 + bit, symbol);
        break;
      }
      let next = children[node]![bit]!;
      if (next === -1) {
        next = children.length;
        children.push([-1, -1]);
        children[node]![bit] = next;
      }
      node = next;
    }
  }
  // A state is accepting when its path from the root is all ones and shorter than 8 bits:
  // that is EOS-prefix padding.
  ACCEPTING[0] = 1;
  for (let node = 0, depth = 0; depth < 7; depth++) {
    node = children[node]![1]!;
    ACCEPTING[node] = 1;
  }
  for (let state = 0; state < children.length; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let i = 3; i >= 0; i--) {
        const bit = (nibble >>> i) & 1;
        const symbol = leaf.get(node * 2 + bit);
        if (symbol === undefined) {
          node = children[node]![bit]!;
        } else if (symbol === EOS) {
          entry |= FAIL;
          node = 0;
        } else {
          // Codes are at least 5 bits long: at most one symbol ends within a nibble.
          entry |= EMIT | (symbol << 11);
          node = 0;
        }
      }
      TRANSITIONS[state * 16 + nibble] = entry | node;
    }
  }
})();

let scratch = Buffer.allocUnsafe(256);

/** Decodes `length` Huffman-coded bytes of `input` at `offset` to a latin1 string (one char per octet). */
export function decodeHuffman(input: Buffer, offset: number, length: number): string {
  // Decoding never expands a byte into more than 8/5 symbols.
  const capacity = Math.ceil((length * 8) / 5);
  if (scratch.length < capacity)
    scratch = Buffer.allocUnsafe(Math.max(capacity, scratch.length * 2));
  const out = scratch;
  let written = 0;
  let state = 0;
  const end = offset + length;
  for (let i = offset; i < end; i++) {
    const byte = input[i] as number;
    let entry = TRANSITIONS[state * 16 + (byte >>> 4)] as number;
    if (entry & FAIL) throw new HuffmanError('EOS symbol inside a Huffman-coded string');
    if (entry & EMIT) out[written++] = (entry >>> 11) & 0xff;
    state = entry & 0x1ff;
    entry = TRANSITIONS[state * 16 + (byte & 0xf)] as number;
    if (entry & FAIL) throw new HuffmanError('EOS symbol inside a Huffman-coded string');
    if (entry & EMIT) out[written++] = (entry >>> 11) & 0xff;
    state = entry & 0x1ff;
  }
  if (ACCEPTING[state] !== 1)
    throw new HuffmanError('Huffman-coded string ends in invalid padding');
  return out.toString('latin1', 0, written);
}

/** Encodes a latin1 string with the static Huffman code (used by tests and for long literals). */
export function encodeHuffman(text: string): Buffer {
  let bits = 0;
  for (let i = 0; i < text.length; i++) bits += LENGTHS[text.charCodeAt(i) & 0xff] as number;
  const out = Buffer.alloc(Math.ceil(bits / 8));
  let acc = 0;
  let accBits = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const symbol = text.charCodeAt(i) & 0xff;
    let length = LENGTHS[symbol] as number;
    const code = CODES[symbol] as number;
    // Feed the code in chunks of at most 8 bits so the accumulator stays small.
    while (length > 0) {
      const take = Math.min(8, length);
      acc = (acc << take) | ((code >>> (length - take)) & ((1 << take) - 1));
      accBits += take;
      length -= take;
      while (accBits >= 8) {
        accBits -= 8;
        out[o++] = (acc >>> accBits) & 0xff;
      }
      acc &= (1 << accBits) - 1;
    }
  }
  if (accBits > 0) out[o] = ((acc << (8 - accBits)) | ((1 << (8 - accBits)) - 1)) & 0xff;
  return out;
}

/** A Huffman-coded string that breaks RFC 7541 §5.2: the peer's HPACK state is unusable. */
export class HuffmanError extends Error {
  override readonly name = 'HuffmanError';
}
