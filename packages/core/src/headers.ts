/**
 * A call's request headers, response headers or trailers, as every transport can give them:
 * lower-case names, string values (a `-bin` value is its wire form, base64), several values per
 * name in the order received. nice-grpc's `Metadata` and the proxy's HPACK header blocks each
 * implement it over their own storage, so an interceptor reads and changes headers without
 * knowing which transport carries the call.
 */
export interface Headers extends Iterable<readonly [name: string, value: string]> {
  /** The first value of `name`, or `undefined`. */
  get(name: string): string | undefined;
  /** Every value of `name`, in order; empty when there is none. */
  getAll(name: string): string[];
  has(name: string): boolean;
  /** Replaces every value of `name` with `value`. */
  set(name: string, value: string): void;
  /** Adds a value after those `name` already has. */
  append(name: string, value: string): void;
  delete(name: string): void;
  /** A copy that changes without changing these (an attempt's own headers). */
  clone(): Headers;
}

/**
 * Headers kept in a flat list, `[name, value, name, value, …]`: the order a header block has on
 * the wire, and no allocation per header. For headers a layer makes itself (a status it
 * answers with) and for transports without a representation of their own.
 */
export class HeaderList implements Headers {
  readonly #fields: string[];

  /** @param fields `[name, value, …]`, names already lower-case; taken over, not copied. */
  constructor(fields: string[] = []) {
    this.#fields = fields;
  }

  get(name: string): string | undefined {
    const fields = this.#fields;
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return undefined;
  }

  getAll(name: string): string[] {
    const values: string[] = [];
    const fields = this.#fields;
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) values.push(fields[i + 1]!);
    return values;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  set(name: string, value: string): void {
    this.delete(name);
    this.#fields.push(name, value);
  }

  append(name: string, value: string): void {
    this.#fields.push(name, value);
  }

  delete(name: string): void {
    const fields = this.#fields;
    let kept = 0;
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === name) continue;
      fields[kept++] = fields[i]!;
      fields[kept++] = fields[i + 1]!;
    }
    fields.length = kept;
  }

  clone(): HeaderList {
    return new HeaderList([...this.#fields]);
  }

  *[Symbol.iterator](): Iterator<readonly [string, string]> {
    const fields = this.#fields;
    for (let i = 0; i < fields.length; i += 2) yield [fields[i]!, fields[i + 1]!];
  }
}
