/**
 * The `grpc-timeout` header, exactly as PROTOCOL-HTTP2 defines it:
 * `TimeoutValue TimeoutUnit`, where the value is an ASCII integer of at most 8 digits and the
 * unit one of `H M S m u n`.
 */

const UNIT_MS = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 } as const;
type Unit = keyof typeof UNIT_MS;

// Finest first, so an encoded timeout keeps as much precision as 8 digits allow.
const ENCODE_ORDER: readonly Unit[] = ['n', 'u', 'm', 'S', 'M', 'H'];
const MAX_VALUE = 99_999_999;
const FORMAT = /^(\d{1,8})([HMSmun])$/;

/** A `grpc-timeout` value that does not follow the spec. */
export class GrpcTimeoutError extends Error {
  constructor(
    /** The offending header value, as received. */
    readonly value: string,
    reason: string,
  ) {
    super(`malformed grpc-timeout ${JSON.stringify(value)}: ${reason}`);
    this.name = 'GrpcTimeoutError';
  }
}

/**
 * Parses a `grpc-timeout` header into milliseconds (fractional for `u`/`n`).
 *
 * @throws {GrpcTimeoutError} for anything the spec does not allow: empty, more than 8 digits,
 *   signs, spaces, decimals, a missing or unknown unit.
 */
export function parseGrpcTimeout(value: string): number {
  const match = FORMAT.exec(value);
  if (!match) {
    let reason = 'expected 1 to 8 digits followed by one of H M S m u n';
    if (/^\d{9,}[HMSmun]$/.test(value)) reason = 'more than 8 digits';
    else if (/^\d+$/.test(value)) reason = 'missing unit';
    throw new GrpcTimeoutError(value, reason);
  }
  return Number(match[1]) * UNIT_MS[match[2] as Unit];
}

/**
 * Encodes a timeout in milliseconds as `grpc-timeout`, in the finest unit that fits 8 digits.
 *
 * Rounds up, as grpc-go does, so a peer never sees a shorter budget than we have; a negative
 * or zero timeout encodes as `0n` (already expired), and one beyond ~11,400 years is capped at
 * the largest encodable value.
 */
export function encodeGrpcTimeout(ms: number): string {
  if (Number.isNaN(ms)) throw new RangeError('timeout is NaN');
  if (ms <= 0) return '0n';
  // Whole milliseconds (what Date arithmetic gives) scale exactly: no rounding to do.
  if (Number.isInteger(ms)) {
    if (ms <= 99) return `${ms * 1_000_000}n`;
    if (ms <= 99_999) return `${ms * 1_000}u`;
    if (ms <= MAX_VALUE) return `${ms}m`;
  }
  for (const unit of ENCODE_ORDER) {
    // Rounding to 1e-9 first keeps float noise (0.1 + 0.2) from rounding 300000n up to 300001n.
    const value = Math.ceil(Number((ms / UNIT_MS[unit]).toFixed(6)));
    if (value <= MAX_VALUE) return `${value}${unit}`;
  }
  return `${MAX_VALUE}H`;
}
