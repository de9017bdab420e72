/**
 * The gRPC status codes (doc/statuscodes.md). The same names and numbers as nice-grpc's and
 * grpc-js's `Status` enums, so values pass between them freely, without core depending on either.
 */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** One of the 17 status codes. */
export type Status = (typeof Status)[keyof typeof Status];

/** Canonical upper-snake-case name of a gRPC status code, e.g. `NOT_FOUND`. */
export type StatusName = keyof typeof Status;

const NAMES = new Map<number, StatusName>();
for (const [name, value] of Object.entries(Status)) {
  if (typeof value === 'number') NAMES.set(value, name as StatusName);
}

/** Returns `true` for the 17 codes defined by the gRPC spec (0–16). */
export function isStatus(code: number): code is Status {
  return NAMES.has(code);
}

/** `5` → `'NOT_FOUND'`; codes outside the spec → `'UNKNOWN'`, as gRPC treats them. */
export function statusName(code: number): StatusName {
  return NAMES.get(code) ?? 'UNKNOWN';
}

/** `'NOT_FOUND'` (any case) → `5`; `undefined` for a name the spec does not define. */
export function statusFromName(name: string): Status | undefined {
  const value = (Status as unknown as Record<string, unknown>)[name.toUpperCase()];
  return typeof value === 'number' ? (value as Status) : undefined;
}

/**
 * Maps the HTTP status of a response that carries no `grpc-status` to a gRPC code, per
 * doc/http-grpc-status-mapping.md: such a response did not come from a gRPC server (an
 * intermediary answered), so the code says what the intermediary meant.
 */
export function statusFromHttp(httpStatus: number): Status {
  switch (httpStatus) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

/**
 * Parses a `grpc-status` header value. The spec allows only decimal digits; anything else
 * (empty, signs, spaces) means the peer is broken, which gRPC reports as UNKNOWN.
 */
export function parseGrpcStatus(value: string | undefined): Status | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,3}$/.test(value)) return Status.UNKNOWN;
  const code = Number(value);
  return isStatus(code) ? code : Status.UNKNOWN;
}

// grpc-message is percent-encoded: every byte outside printable ASCII, and '%' itself
// (PROTOCOL-HTTP2, "Status-Message").
const UNRESERVED = /^[\x20-\x24\x26-\x7e]*$/;

/** Percent-encodes a status message for the `grpc-message` trailer. */
export function encodeGrpcMessage(message: string): string {
  if (UNRESERVED.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Decodes a `grpc-message` value. Malformed escapes are kept verbatim rather than failing
 * the call: the spec asks receivers to tolerate them, since the code is what matters.
 */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes('%')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const hex = value.slice(i + 1, i + 3);
    if (value[i] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(value[i] as string, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * A gRPC failure with its code and message, whatever transport carries the call. Thrown where a
 * status is the answer (a malformed frame, an oversize message); each transport turns it into
 * its own error type (`@switchyard/nice-grpc`'s `GrpcError`, a proxy's trailers).
 */
export class StatusError extends Error {
  constructor(
    readonly code: Status,
    readonly details: string,
  ) {
    super(`${statusName(code)}: ${details}`);
    this.name = 'StatusError';
  }
}
