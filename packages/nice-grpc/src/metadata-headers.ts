import type { Headers } from '@switchyard/core';
import { Metadata } from 'nice-grpc-common';

/**
 * Core's {@link Headers} over a nice-grpc `Metadata`. A `-bin` value reads as base64, its wire
 * form, and is stored as bytes.
 *
 * Copy on write: a call's headers start as a view of the caller's metadata and only become a
 * copy when a layer changes them, so that a call no layer touches costs no copy and the
 * caller's object is never changed under it.
 */
export class MetadataHeaders implements Headers {
  #metadata: Metadata | undefined;
  #own: boolean;

  /** @param own whether `metadata` may be changed in place (it belongs to this call alone) */
  constructor(metadata: Metadata | undefined, own = false) {
    this.#metadata = metadata;
    this.#own = own;
  }

  /** The metadata as it stands, for nice-grpc; `undefined` when the caller gave none and no layer added any. */
  get metadata(): Metadata | undefined {
    return this.#metadata;
  }

  get(name: string): string | undefined {
    const value = this.#metadata?.get(name);
    return value === undefined || typeof value === 'string' ? value : base64(value);
  }

  getAll(name: string): string[] {
    const values = this.#metadata?.getAll(name);
    if (values === undefined) return [];
    return values.map((value) => (typeof value === 'string' ? value : base64(value)));
  }

  has(name: string): boolean {
    return this.#metadata?.has(name) ?? false;
  }

  set(name: string, value: string): void {
    this.#writable().set(name, binary(name, value));
  }

  append(name: string, value: string): void {
    this.#writable().append(name, binary(name, value));
  }

  delete(name: string): void {
    if (this.#metadata?.has(name)) this.#writable().delete(name);
  }

  clone(): MetadataHeaders {
    return new MetadataHeaders(Metadata(this.#metadata), true);
  }

  *[Symbol.iterator](): Iterator<readonly [string, string]> {
    if (this.#metadata === undefined) return;
    for (const [name, values] of this.#metadata) {
      for (const value of values) yield [name, typeof value === 'string' ? value : base64(value)];
    }
  }

  #writable(): Metadata {
    if (!this.#own) {
      this.#metadata = Metadata(this.#metadata);
      this.#own = true;
    }
    return this.#metadata!;
  }
}

function base64(value: Uint8Array): string {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
}

function binary(name: string, value: string): string | Uint8Array {
  // nice-grpc's Metadata requires bytes for `-bin` keys.
  return name.endsWith('-bin') ? Buffer.from(value, 'base64') : value;
}

/** `headers` as nice-grpc metadata: the very object for {@link MetadataHeaders}, else a copy. */
export function toMetadata(headers: Headers): Metadata | undefined {
  if (headers instanceof MetadataHeaders) return headers.metadata;
  const metadata = Metadata();
  for (const [name, value] of headers) metadata.append(name, binary(name, value));
  return metadata;
}
