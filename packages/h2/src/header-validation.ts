import type { HeaderBlock } from './hpack.js';

/**
 * The message rules of RFC 9113 §8.2–8.3 that a proxy must enforce before forwarding a header
 * block, so that it never passes on what the next hop would have to reject. Field characters are
 * checked by the HPACK decoder as literals arrive; these checks are about structure.
 * Each returns why the block is malformed, or `undefined`.
 */

// Connection-specific fields have no meaning in HTTP/2 (§8.2.2).
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

const REQUEST_PSEUDO = new Set([':method', ':scheme', ':path', ':authority']);

function regularField(name: string, value: string): string | undefined {
  if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
  if (name === 'te' && value !== 'trailers') return `te: ${value} (only "trailers" is allowed)`;
  return undefined;
}

/** A request's header block (§8.3.1). */
export function requestProblem(block: HeaderBlock): string | undefined {
  if (block.malformed !== undefined) return block.malformed;
  const fields = block.fields;
  let regular = false;
  let seen = 0; // bit per pseudo-header, to refuse duplicates
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (regular) return `pseudo-header ${name} after regular fields`;
      if (!REQUEST_PSEUDO.has(name)) return `pseudo-header ${name} in a request`;
      const bit = name === ':method' ? 1 : name === ':scheme' ? 2 : name === ':path' ? 4 : 8;
      if (seen & bit) return `duplicate ${name}`;
      seen |= bit;
      if (bit === 4 && fields[i + 1] === '') return 'empty :path';
    } else {
      regular = true;
      const problem = regularField(name, fields[i + 1] as string);
      if (problem) return problem;
    }
  }
  if ((seen & 7) !== 7) return 'missing :method, :scheme or :path';
  return undefined;
}

/** A response's first header block (§8.3.2). */
export function responseProblem(block: HeaderBlock): string | undefined {
  if (block.malformed !== undefined) return block.malformed;
  const fields = block.fields;
  let status = false;
  let regular = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    if (name.charCodeAt(0) === 58) {
      if (regular) return `pseudo-header ${name} after regular fields`;
      if (name !== ':status' || status) return `pseudo-header ${name} in a response`;
      if (!/^\d{3}$/.test(fields[i + 1] as string)) return `:status ${fields[i + 1]}`;
      status = true;
    } else {
      regular = true;
      const problem = regularField(name, fields[i + 1] as string);
      if (problem) return problem;
    }
  }
  return status ? undefined : 'missing :status';
}

/** Trailers: no pseudo-headers (§8.1). */
export function trailersProblem(block: HeaderBlock): string | undefined {
  if (block.malformed !== undefined) return block.malformed;
  const fields = block.fields;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    if (name.charCodeAt(0) === 58) return `pseudo-header ${name} in trailers`;
    const problem = regularField(name, fields[i + 1] as string);
    if (problem) return problem;
  }
  return undefined;
}

// Lowercase token characters (RFC 9110 §5.6.2), as a lookup by char code.
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") TOKEN[c.charCodeAt(0)] = 1;

/** A field name as HTTP/2 allows it: a lowercase token, or `:` and a lowercase token. */
export function validFieldName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = name.charCodeAt(0) === 58 ? 1 : 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || TOKEN[c] !== 1) return false;
  }
  return name.length > 1 || name !== ':';
}

/** A field value without NUL, CR, LF, or whitespace at either end (§8.2.1). */
export function validFieldValue(value: string): boolean {
  const n = value.length;
  if (n === 0) return true;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(n - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}

/**
 * The content-length a message's head declares (RFC 9113 §8.1.1, RFC 9110 §8.6): -1 when none,
 * -2 when it is not a number or repeated with different values (the message is malformed).
 */
export function declaredLength(block: HeaderBlock): number {
  const fields = block.fields;
  let length = -1;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] !== 'content-length') continue;
    const value = fields[i + 1] as string;
    if (value.length === 0 || value.length > 15) return -2;
    let parsed = 0;
    for (let j = 0; j < value.length; j++) {
      const digit = value.charCodeAt(j) - 48;
      if (digit < 0 || digit > 9) return -2;
      parsed = parsed * 10 + digit;
    }
    if (length >= 0 && parsed !== length) return -2;
    length = parsed;
  }
  return length;
}
