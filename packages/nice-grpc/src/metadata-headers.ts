import type { Headers } from '@switchyard/core';
import type { Metadata } from 'nice-grpc-common';

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
    return new MetadataHeaders(ownMetadata(this.#metadata), true);
  }

  *[Symbol.iterator](): Iterator<readonly [string, string]> {
    if (this.#metadata === undefined) return;
    for (const [name, values] of this.#metadata) {
      for (const value of values) yield [name, typeof value === 'string' ? value : base64(value)];
    }
  }

  #writable(): Metadata {
    if (!this.#own) {
      this.#metadata = ownMetadata(this.#metadata);
      this.#own = true;
    }
    return this.#metadata!;
  }
}

type MetadataValue = string | Uint8Array;

/**
 * nice-grpc's `Metadata`, with the same rules and the same way of joining repeated text values,
 * as a class: nice-grpc's own makes eight closures per object, and a call whose headers a layer
 * changes makes one of these.
 */
class OwnMetadata {
  readonly #data = new Map<string, MetadataValue[]>();

  /** A copy of `source`, whose entries nice-grpc has validated already. */
  constructor(source?: Metadata) {
    if (source !== undefined) for (const [key, values] of source) this.#data.set(key, [...values]);
  }

  set(key: string, value: MetadataValue | MetadataValue[]): this {
    key = key.toLowerCase();
    if (Array.isArray(value)) {
      if (value.length === 0) {
        this.#data.delete(key);
        return this;
      }
      for (const item of value) validate(key, item);
      this.#data.set(key, key.endsWith('-bin') ? value : [value.join(', ')]);
      return this;
    }
    validate(key, value);
    this.#data.set(key, [value]);
    return this;
  }

  append(key: string, value: MetadataValue): this {
    key = key.toLowerCase();
    validate(key, value);
    const values = this.#data.get(key);
    if (values === undefined) this.#data.set(key, [value]);
    else if (key.endsWith('-bin')) values.push(value);
    else this.#data.set(key, [`${values.join(', ')}, ${value as string}`]);
    return this;
  }

  delete(key: string): void {
    this.#data.delete(key.toLowerCase());
  }

  get(key: string): MetadataValue | undefined {
    return this.#data.get(key.toLowerCase())?.[0];
  }

  getAll(key: string): MetadataValue[] {
    return this.#data.get(key.toLowerCase()) ?? [];
  }

  has(key: string): boolean {
    return this.#data.has(key.toLowerCase());
  }

  [Symbol.iterator](): IterableIterator<[string, MetadataValue[]]> {
    return this.#data[Symbol.iterator]();
  }
}

/** An {@link OwnMetadata}, typed as what nice-grpc takes (its value types depend on the key). */
function ownMetadata(source: Metadata | undefined): Metadata {
  return new OwnMetadata(source) as unknown as Metadata;
}

/** Keys found valid: layers set the same few (grpc-timeout, traceparent) on every call. */
const validKeys = new Set<string>();

// nice-grpc-common's checks, so that a bad key or value fails where it was set, as it would there.
function validate(key: string, value: MetadataValue): void {
  if (!validKeys.has(key)) {
    if (!/^[0-9a-z_.-]+$/.test(key)) {
      throw new Error(`Metadata key '${key}' contains illegal characters`);
    }
    if (validKeys.size < 1_000) validKeys.add(key);
  }
  if (key.endsWith('-bin')) {
    if (!(value instanceof Uint8Array)) {
      throw new Error(`Metadata key '${key}' ends with '-bin', thus it must have binary value`);
    }
  } else {
    if (typeof value !== 'string') {
      throw new Error(
        `Metadata key '${key}' doesn't end with '-bin', thus it must have string value`,
      );
    }
    if (!/^[ -~]*$/.test(value)) {
      throw new Error(`Metadata value '${value}' of key '${key}' contains illegal characters`);
    }
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
  const metadata = ownMetadata(undefined);
  for (const [name, value] of headers) metadata.append(name, binary(name, value));
  return metadata;
}
