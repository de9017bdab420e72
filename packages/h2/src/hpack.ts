import { validFieldName, validFieldValue } from './header-validation.js';
import { decodeHuffman, encodeHuffman, HuffmanError } from './huffman.js';

/**
 * HPACK (RFC 7541): the header compression of HTTP/2. Strings are latin1 — one char per octet —
 * so any octet sequence a peer sends is forwarded unchanged.
 */

/**
 * A decoded header block: names and values interleaved (`[name0, value0, name1, value1, …]`),
 * in wire order, duplicates kept — so re-encoding it for the next hop changes nothing.
 */
export class HeaderBlock {
  /** `[name, value, name, value, …]`. */
  readonly fields: string[];
  /** Indexes (into {@link fields}, of names) of fields sent as never-indexed (RFC 7541 §7.1.3). */
  neverIndexed: number[] | undefined = undefined;
  /** RFC 7541 §4.1 size: Σ (name + value + 32). */
  size = 0;
  /** The block was larger than the decoder's limit; {@link fields} holds only its start. */
  oversize = false;
  /** Why a field's name or value is not allowed in HTTP/2 (RFC 9113 §8.2.1), if one is not. */
  malformed: string | undefined = undefined;

  constructor(fields: string[] = []) {
    this.fields = fields;
  }

  /** First value of `name` (lowercase), or `undefined`. */
  get(name: string): string | undefined {
    const fields = this.fields;
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return undefined;
  }
}

// RFC 7541 Appendix A. Index 1 is STATIC[0].
const STATIC: readonly (readonly [string, string])[] = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC.length;
const ENTRY_OVERHEAD = 32;

/** The peer broke HPACK: a connection error of type COMPRESSION_ERROR (RFC 9113 §4.3). */
export class CompressionError extends Error {
  override readonly name = 'CompressionError';
}

/** Options of {@link HpackDecoder}. */
export interface HpackDecoderOptions {
  /** Our SETTINGS_HEADER_TABLE_SIZE: the largest dynamic table the peer may use. Default 4096. */
  maxTableSize?: number;
  /** Blocks whose decoded size exceeds this are marked `oversize`. Default 64 KiB. */
  maxHeaderListSize?: number;
}

/** Decodes the header blocks of one direction of one connection. */
export class HpackDecoder {
  // Dynamic table as a ring of names and values; newest entry at `#head - 1`.
  #names: string[] = [];
  #values: string[] = [];
  // Whether each entry's name and value are valid HTTP/2 field characters, checked once on entry.
  #valid: boolean[] = [];
  #head = 0;
  #count = 0;
  #size = 0;
  #maxSize: number;
  readonly #settingsMaxSize: number;
  readonly #maxListSize: number;

  constructor({ maxTableSize = 4096, maxHeaderListSize = 64 << 10 }: HpackDecoderOptions = {}) {
    this.#maxSize = maxTableSize;
    this.#settingsMaxSize = maxTableSize;
    this.#maxListSize = maxHeaderListSize;
  }

  /** Decodes one complete header block. @throws CompressionError */
  decode(block: Buffer): HeaderBlock {
    const out = new HeaderBlock();
    const fields = out.fields;
    let pos = 0;
    const end = block.length;
    let fieldSeen = false;
    try {
      while (pos < end) {
        const first = block[pos] as number;
        let name: string;
        let value: string;
        if (first & 0x80) {
          // Indexed field (§6.1).
          const index = this.#integer(block, pos, 7);
          pos = this.#pos;
          if (index === 0) throw new CompressionError('index 0 in an indexed header field');
          name = this.#name(index);
          value = this.#value(index);
          if (index > STATIC_COUNT && !this.#valid[this.#slot(index)]) {
            out.malformed ??= `invalid characters in field ${JSON.stringify(name)}`;
          }
        } else if ((first & 0xe0) === 0x20) {
          // Dynamic table size update (§6.3): only before the first field.
          if (fieldSeen) throw new CompressionError('table size update after a header field');
          const size = this.#integer(block, pos, 5);
          pos = this.#pos;
          if (size > this.#settingsMaxSize) {
            throw new CompressionError(
              `table size ${size} above the advertised ${this.#settingsMaxSize}`,
            );
          }
          this.#maxSize = size;
          this.#evict(0);
          continue;
        } else {
          // Literal (§6.2): with incremental indexing (01), without (0000) or never indexed (0001).
          const indexing = (first & 0xc0) === 0x40;
          const prefix = indexing ? 6 : 4;
          const nameIndex = this.#integer(block, pos, prefix);
          pos = this.#pos;
          let valid = true;
          if (nameIndex === 0) {
            name = this.#string(block, pos);
            pos = this.#pos;
            valid = validFieldName(name);
          } else {
            name = this.#name(nameIndex);
            if (nameIndex > STATIC_COUNT) valid = this.#valid[this.#slot(nameIndex)] === true;
          }
          value = this.#string(block, pos);
          pos = this.#pos;
          if (valid) valid = validFieldValue(value);
          if (!valid) out.malformed ??= `invalid characters in field ${JSON.stringify(name)}`;
          if (indexing) this.#insert(name, value, valid);
          else if (first & 0x10) {
            out.neverIndexed ??= [];
            out.neverIndexed.push(fields.length);
          }
        }
        fieldSeen = true;
        out.size += name.length + value.length + ENTRY_OVERHEAD;
        if (out.size > this.#maxListSize) out.oversize = true;
        // Past the limit the block is still decoded (the table must stay in sync), not kept.
        else fields.push(name, value);
      }
    } catch (error) {
      if (error instanceof HuffmanError) throw new CompressionError(error.message);
      throw error;
    }
    return out;
  }

  #pos = 0;

  /** Reads an HPACK integer (§5.1) with an N-bit prefix at `pos`; leaves the end in `#pos`. */
  #integer(block: Buffer, pos: number, prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = (block[pos++] as number) & max;
    if (value === max) {
      let shift = 0;
      let byte: number;
      do {
        if (pos >= block.length) throw new CompressionError('truncated integer');
        byte = block[pos++] as number;
        value += (byte & 0x7f) * 2 ** shift;
        shift += 7;
        if (shift > 28) throw new CompressionError('integer too large');
      } while (byte & 0x80);
    }
    this.#pos = pos;
    return value;
  }

  #string(block: Buffer, pos: number): string {
    if (pos >= block.length) throw new CompressionError('truncated string');
    const huffman = ((block[pos] as number) & 0x80) !== 0;
    const length = this.#integer(block, pos, 7);
    const start = this.#pos;
    if (start + length > block.length) throw new CompressionError('string longer than the block');
    this.#pos = start + length;
    return huffman
      ? decodeHuffman(block, start, length)
      : block.toString('latin1', start, start + length);
  }

  #slot(index: number): number {
    const dynamic = index - STATIC_COUNT - 1;
    if (dynamic >= this.#count) throw new CompressionError(`index ${index} beyond the table`);
    const capacity = this.#names.length;
    return (this.#head - 1 - dynamic + capacity) % capacity;
  }

  #name(index: number): string {
    if (index <= STATIC_COUNT) return (STATIC[index - 1] as readonly [string, string])[0];
    return this.#names[this.#slot(index)] as string;
  }

  #value(index: number): string {
    if (index <= STATIC_COUNT) return (STATIC[index - 1] as readonly [string, string])[1];
    return this.#values[this.#slot(index)] as string;
  }

  #insert(name: string, value: string, valid: boolean): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    if (size > this.#maxSize) return; // §4.4: too large an entry empties the table
    if (this.#count === this.#names.length) this.#grow();
    const capacity = this.#names.length;
    this.#names[this.#head] = name;
    this.#values[this.#head] = value;
    this.#valid[this.#head] = valid;
    this.#head = (this.#head + 1) % capacity;
    this.#count++;
    this.#size += size;
  }

  /** Evicts oldest entries until `incoming` more octets fit. */
  #evict(incoming: number): void {
    const capacity = this.#names.length;
    while (this.#count > 0 && this.#size + incoming > this.#maxSize) {
      const oldest = (this.#head - this.#count + capacity) % capacity;
      this.#size -=
        (this.#names[oldest] as string).length +
        (this.#values[oldest] as string).length +
        ENTRY_OVERHEAD;
      this.#names[oldest] = '';
      this.#values[oldest] = '';
      this.#count--;
    }
  }

  #grow(): void {
    const capacity = this.#names.length;
    const names: string[] = [];
    const values: string[] = [];
    const valid: boolean[] = [];
    for (let i = 0; i < this.#count; i++) {
      const slot = (this.#head - this.#count + i + capacity) % capacity;
      names.push(this.#names[slot] as string);
      values.push(this.#values[slot] as string);
      valid.push(this.#valid[slot] === true);
    }
    const next = Math.max(16, capacity * 2);
    names.length = next;
    values.length = next;
    valid.length = next;
    names.fill('', this.#count);
    values.fill('', this.#count);
    valid.fill(false, this.#count);
    this.#names = names;
    this.#values = values;
    this.#valid = valid;
    this.#head = this.#count % next;
  }
}

// Exact name/value pairs and names of the static table, for the encoder. Pairs are looked up
// name first, then value: no key string is built per field (decoded fields reuse the same
// string objects, whose hashes V8 caches).
const STATIC_PAIRS = new Map<string, Map<string, number>>();
const STATIC_NAMES = new Map<string, number>();
STATIC.forEach(([name, value], i) => {
  let values = STATIC_PAIRS.get(name);
  if (values === undefined) {
    values = new Map();
    STATIC_PAIRS.set(name, values);
  }
  values.set(value, i + 1);
  if (!STATIC_NAMES.has(name)) STATIC_NAMES.set(name, i + 1);
});

// Values that differ on every call would only churn the dynamic table: sent as literals.
const VOLATILE = new Set([
  'grpc-timeout',
  'grpc-message',
  'content-length',
  'date',
  'traceparent',
  'tracestate',
  'grpc-trace-bin',
  'grpc-tags-bin',
  'x-request-id',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-cloud-trace-context',
]);
// RFC 7541 §7.1.3: short secrets must not sit in a table an attacker could probe.
const SENSITIVE = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
// Longer values are not worth a table slot shared with the common headers.
const MAX_INDEXED_VALUE = 512;

/**
 * Where every encoder writes a block: one buffer for the process, not one per connection (an idle
 * connection should cost little). A block is copied out before the next is encoded — encoding is
 * synchronous and callers copy the view it returns at once.
 */
let scratch = Buffer.allocUnsafe(4096);

/**
 * Encodes header blocks for one direction of one connection: exact repeats become one-byte
 * indexes into the static or dynamic table; new name/value pairs are inserted (Huffman-coded
 * when shorter); volatile and sensitive values are sent as literals.
 */

export class HpackEncoder {
  // Dynamic table: insertion number of the newest entry for each pair and each name.
  readonly #pairs = new Map<string, Map<string, number>>();
  readonly #names = new Map<string, number>();
  readonly #entries: { name: string; value: string; size: number; id: number }[] = [];
  #first = 0; // index in #entries of the oldest live entry
  #inserted = 0;
  #size = 0;
  #maxSize: number;
  #pendingSizeUpdate = -1;
  #o = 0;

  constructor(maxTableSize = 4096) {
    this.#maxSize = maxTableSize;
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed: use at most that, and say so (§4.2). */
  setMaxTableSize(size: number): void {
    const next = Math.min(size, 4096);
    if (next === this.#maxSize) return;
    this.#maxSize = next;
    this.#pendingSizeUpdate = next;
    this.#evict(0);
  }

  /**
   * Encodes `block`; returns a view of the encoder's own buffer, valid until the next call —
   * the connection copies it into its output at once.
   */
  encode(block: HeaderBlock): Buffer {
    this.#o = 0;
    // A buffer grown for one large block is not kept for the process's lifetime.
    if (scratch.length > 16 << 10) scratch = Buffer.allocUnsafe(4096);
    if (this.#pendingSizeUpdate >= 0) {
      this.#integer(this.#pendingSizeUpdate, 5, 0x20);
      this.#pendingSizeUpdate = -1;
    }
    const fields = block.fields;
    const neverIndexed = block.neverIndexed;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] as string;
      const value = fields[i + 1] as string;
      if (neverIndexed?.includes(i)) {
        this.#literal(name, value, 0x10);
        continue;
      }
      const staticIndex = STATIC_PAIRS.get(name)?.get(value);
      if (staticIndex !== undefined) {
        this.#integer(staticIndex, 7, 0x80);
        continue;
      }
      const id = this.#pairs.get(name)?.get(value);
      if (id !== undefined) {
        this.#integer(this.#dynamicIndex(id), 7, 0x80);
        continue;
      }
      if (SENSITIVE.has(name)) this.#literal(name, value, 0x10);
      else if (VOLATILE.has(name) || value.length > MAX_INDEXED_VALUE)
        this.#literal(name, value, 0x00);
      else this.#indexedLiteral(name, value);
    }
    return scratch.subarray(0, this.#o);
  }

  #dynamicIndex(id: number): number {
    return STATIC_COUNT + this.#inserted - id + 1;
  }

  #nameIndex(name: string): number {
    const id = this.#names.get(name);
    if (id !== undefined) return this.#dynamicIndex(id);
    return STATIC_NAMES.get(name) ?? 0;
  }

  /** Literal without indexing (0x00) or never indexed (0x10): 4-bit name index prefix. */
  #literal(name: string, value: string, flags: number): void {
    const nameIndex = this.#nameIndex(name);
    this.#integer(nameIndex, 4, flags);
    if (nameIndex === 0) this.#string(name, false);
    this.#string(value, false);
  }

  #indexedLiteral(name: string, value: string): void {
    const nameIndex = this.#nameIndex(name);
    this.#integer(nameIndex, 6, 0x40);
    if (nameIndex === 0) this.#string(name, true);
    this.#string(value, true);
    this.#insert(name, value, name.length + value.length + ENTRY_OVERHEAD);
  }

  #insert(name: string, value: string, size: number): void {
    this.#evict(size);
    if (size > this.#maxSize) return;
    const id = ++this.#inserted;
    this.#entries.push({ name, value, size, id });
    let values = this.#pairs.get(name);
    if (values === undefined) {
      values = new Map();
      this.#pairs.set(name, values);
    }
    values.set(value, id);
    this.#names.set(name, id);
    this.#size += size;
  }

  #evict(incoming: number): void {
    const entries = this.#entries;
    while (this.#first < entries.length && this.#size + incoming > this.#maxSize) {
      const oldest = entries[this.#first++]!;
      this.#size -= oldest.size;
      const values = this.#pairs.get(oldest.name);
      if (values?.get(oldest.value) === oldest.id) {
        values.delete(oldest.value);
        if (values.size === 0) this.#pairs.delete(oldest.name);
      }
      if (this.#names.get(oldest.name) === oldest.id) this.#names.delete(oldest.name);
    }
    if (this.#first > 64 && this.#first * 2 > entries.length) {
      entries.splice(0, this.#first);
      this.#first = 0;
    }
  }

  #reserve(bytes: number): void {
    if (this.#o + bytes <= scratch.length) return;
    const next = Buffer.allocUnsafe(Math.max(scratch.length * 2, this.#o + bytes));
    scratch.copy(next, 0, 0, this.#o);
    scratch = next;
  }

  #integer(value: number, prefixBits: number, flags: number): void {
    this.#reserve(6);
    const max = (1 << prefixBits) - 1;
    if (value < max) {
      scratch[this.#o++] = flags | value;
      return;
    }
    scratch[this.#o++] = flags | max;
    value -= max;
    while (value >= 128) {
      scratch[this.#o++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    scratch[this.#o++] = value;
  }

  #string(text: string, huffman: boolean): void {
    if (huffman && text.length > 4) {
      const coded = encodeHuffman(text);
      if (coded.length < text.length) {
        this.#integer(coded.length, 7, 0x80);
        this.#reserve(coded.length);
        coded.copy(scratch, this.#o);
        this.#o += coded.length;
        return;
      }
    }
    this.#integer(text.length, 7, 0);
    this.#reserve(text.length);
    this.#o += scratch.write(text, this.#o, 'latin1');
  }
}
