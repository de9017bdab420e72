import { randomBytes } from 'node:crypto';

/**
 * A random 128-bit serial number as upper-case hex, matching
 * `X509Certificate#serialNumber` from node:crypto.
 *
 * RFC 5280 wants a positive integer of at most 20 octets. Forcing the top byte
 * into 0x40..0x7f keeps it positive (no sign byte needed) and free of leading
 * zero bytes, so the DER encoding and the hex string never disagree on length.
 */
export function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.toString('hex').toUpperCase();
}
