/**
 * Exponential backoff with full jitter: a uniformly random delay in
 * `[0, min(maxDelayMs, baseDelayMs × 2^retryIndex))`.
 *
 * Full jitter rather than gRFC A6's 0.8–1.2: A6's narrow jitter keeps the callers that failed
 * together retrying together, in waves that hit a recovering backend at the same instants;
 * spreading each wave over the whole interval is what breaks it up (measured in AWS's
 * "Exponential Backoff And Jitter", which nice-grpc's retry middleware cites too). The volume of
 * retries is the budget's job; the backoff only has to decorrelate them.
 *
 * @param retryIndex 0 for the first retry.
 * @param random uniform in [0, 1), `Math.random` unless a test pins it.
 */
export function fullJitterBackoff(
  retryIndex: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number,
): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** retryIndex);
  return Math.round(random() * ceiling);
}
