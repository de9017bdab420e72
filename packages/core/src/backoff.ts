/**
 * Exponential backoff, the one implementation every package uses (retries, reconnects,
 * outlier ejection, health-check reconnects).
 */

/** Options of {@link exponentialBackoff}. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. Default 100 ms. */
  baseMs?: number;
  /** Upper bound of the un-jittered delay. Default 10 s. */
  maxMs?: number;
  /** Growth per attempt. Default 2 (gRFC A6 and Linkerd use 1.6–2). */
  multiplier?: number;
  /**
   * How the delay is randomised so that many clients failing together do not retry together:
   * `full` picks uniformly in [0, delay] (AWS "full jitter", lowest contention; what
   * nice-grpc-client-middleware-retry does); a number `j` picks in [delay·(1−j), delay·(1+j)]
   * (gRFC A6 connection backoff uses 0.2). Default `full`.
   */
  jitter?: 'full' | number;
  /** Source of randomness in [0, 1); injectable so tests can pin it. Default `Math.random`. */
  random?: () => number;
}

/** Delay in ms before retry number `attempt` (0 = first retry). */
export type Backoff = (attempt: number) => number;

/** Returns the backoff schedule: `min(maxMs, baseMs · multiplier^attempt)`, jittered. */
export function exponentialBackoff({
  baseMs = 100,
  maxMs = 10_000,
  multiplier = 2,
  jitter = 'full',
  random = Math.random,
}: BackoffOptions = {}): Backoff {
  if (!(baseMs >= 0 && maxMs >= 0 && multiplier >= 1)) {
    throw new RangeError('backoff needs baseMs >= 0, maxMs >= 0 and multiplier >= 1');
  }
  return (attempt) => {
    const delay = Math.min(maxMs, baseMs * multiplier ** Math.max(0, attempt));
    if (jitter === 'full') return delay * random();
    return delay * (1 - jitter + 2 * jitter * random());
  };
}
