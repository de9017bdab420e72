import { ClientError, Metadata, ServerError, Status } from 'nice-grpc-common';

export { Status };

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
 * A gRPC failure with its code, message and trailers.
 *
 * It extends nice-grpc's `ServerError`, so a handler may throw it and the client sees the same
 * code and message; {@link GrpcError.from} turns anything a call can throw (`ClientError`,
 * `ServerError`, an abort, a plain error) into one, so middleware classifies failures in one
 * place.
 */
export class GrpcError extends ServerError {
  /** Trailers sent with (or received with) the status; empty when there were none. */
  readonly trailers: Metadata;

  constructor(code: Status, details: string, trailers: Metadata = Metadata()) {
    super(code, details);
    this.name = 'GrpcError';
    this.trailers = trailers;
  }

  /** The spec's name of {@link code}, for messages and metric labels. */
  get codeName(): StatusName {
    return statusName(this.code);
  }

  /**
   * Normalises a thrown value: gRPC errors keep their code and details, aborts become
   * CANCELLED, anything else UNKNOWN (as a gRPC server reports an unexpected exception).
   */
  static from(error: unknown, trailers?: Metadata): GrpcError {
    if (error instanceof GrpcError) return error;
    if (error instanceof ServerError || error instanceof ClientError) {
      return new GrpcError(error.code, error.details, trailers);
    }
    if (error instanceof Error && error.name === 'AbortError') {
      return new GrpcError(
        Status.CANCELLED,
        error.message || 'The operation was cancelled',
        trailers,
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    return new GrpcError(Status.UNKNOWN, message, trailers);
  }

  /** The same failure as nice-grpc's client sees it, for code that matches on `ClientError`. */
  toClientError(path: string): ClientError {
    return new ClientError(path, this.code, this.details);
  }
}
