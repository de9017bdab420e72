import type { Headers } from '@switchyard/core';
import { HeaderBlock } from '@switchyard/h2';

/**
 * Core's {@link Headers} over an HPACK header block, as the proxy received it and sends it on.
 *
 * Copy on write: a call's headers start as the very block that was decoded, and are copied only
 * when a layer changes them, so a call that no layer touches is forwarded without a copy. Names
 * the peer sent as never-indexed (credentials, RFC 7541 §7.1.3) stay never-indexed in the copy.
 */
export class BlockHeaders implements Headers {
  #block: HeaderBlock;
  #own: boolean;
  #changed = false;

  constructor(block: HeaderBlock, own = false) {
    this.#block = block;
    this.#own = own;
  }

  /** The block to send: the one received when no layer changed it. */
  get block(): HeaderBlock {
    return this.#block;
  }

  /** Whether a layer changed these headers (so that they no longer are what a peer sent). */
  get changed(): boolean {
    return this.#changed;
  }

  get(name: string): string | undefined {
    return this.#block.get(name);
  }

  getAll(name: string): string[] {
    const values: string[] = [];
    const fields = this.#block.fields;
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) values.push(fields[i + 1]!);
    return values;
  }

  has(name: string): boolean {
    return this.#block.get(name) !== undefined;
  }

  set(name: string, value: string): void {
    const at = indexOf(this.#block, name);
    if (at < 0) {
      this.append(name, value);
      return;
    }
    // Replaced where it stands, so the block keeps the order the client sent; later values go.
    const block = this.#writable();
    block.size += value.length - block.fields[at + 1]!.length;
    block.fields[at + 1] = value;
    this.#remove(name, at + 2);
  }

  append(name: string, value: string): void {
    const block = this.#writable();
    block.fields.push(name, value);
    block.size += name.length + value.length + 32;
  }

  delete(name: string): void {
    if (indexOf(this.#block, name) >= 0) this.#remove(name, 0);
  }

  clone(): BlockHeaders {
    return new BlockHeaders(this.#block);
  }

  *[Symbol.iterator](): Iterator<readonly [string, string]> {
    const fields = this.#block.fields;
    for (let i = 0; i < fields.length; i += 2) yield [fields[i]!, fields[i + 1]!];
  }

  /** Removes the fields named `name` from index `from` on. */
  #remove(name: string, from: number): void {
    const block = this.#writable();
    const { fields } = block;
    const secret = secretNames(block);
    let kept = from;
    for (let i = from; i < fields.length; i += 2) {
      if (fields[i] === name) {
        block.size -= name.length + fields[i + 1]!.length + 32;
        continue;
      }
      fields[kept++] = fields[i]!;
      fields[kept++] = fields[i + 1]!;
    }
    fields.length = kept;
    markSecret(block, secret);
  }

  #writable(): HeaderBlock {
    this.#changed = true;
    if (this.#own) return this.#block;
    const source = this.#block;
    const copy = new HeaderBlock([...source.fields]);
    copy.size = source.size;
    copy.neverIndexed = source.neverIndexed && [...source.neverIndexed];
    this.#block = copy;
    this.#own = true;
    return copy;
  }
}

function indexOf(block: HeaderBlock, name: string): number {
  const { fields } = block;
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return i;
  return -1;
}

function secretNames(block: HeaderBlock): Set<string> | undefined {
  const indexes = block.neverIndexed;
  if (indexes === undefined || indexes.length === 0) return undefined;
  return new Set(indexes.map((index) => block.fields[index]!));
}

function markSecret(block: HeaderBlock, secret: Set<string> | undefined): void {
  if (secret === undefined) return;
  const indexes: number[] = [];
  const { fields } = block;
  for (let i = 0; i < fields.length; i += 2) if (secret.has(fields[i]!)) indexes.push(i);
  block.neverIndexed = indexes;
}
