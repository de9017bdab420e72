/**
 * A limit on retries shared by every call that uses it: retries are allowed while, over the last
 * `ttlMs`, `retries ≤ retryRatio × calls + minRetriesPerSecond × ttlMs / 1000`.
 *
 * This is the budget of tower's `TpsBudget` and Linkerd's `retryBudget` (and Finagle's
 * `RetryBudget` before them): the allowance grows with the traffic it protects, so a failing
 * backend sees at most `1 + retryRatio` times its normal load however many attempts each call
 * may make, while the reserve lets a quiet client still retry.
 */
export interface RetryBudget {
  /** Records one call (the first attempt); each deposit allows `retryRatio` retries. */
  deposit(): void;
  /** Takes one retry from the budget; `false` (and nothing taken) when it is spent. */
  withdraw(): boolean;
}

/** Options of {@link createRetryBudget}; the defaults are Linkerd's and tower's. */
export interface RetryBudgetOptions {
  /** How long a call or a retry counts against the budget, 1 to 60 seconds. Default 10 000. */
  ttlMs?: number;
  /** Retries allowed per second whatever the traffic, so that quiet clients can retry. Default 10. */
  minRetriesPerSecond?: number;
  /** Retries allowed per call, on top of the reserve (0.2 = one retry per five calls). Default 0.2. */
  retryRatio?: number;
  /** Monotonic clock in milliseconds. Default `performance.now`; tests pass a fake one. */
  now?: () => number;
}

// The window is kept as ten buckets, like tower's: a deposit or withdrawal expires between
// 0.9 × ttl and ttl after it was made, and no operation walks more than ten buckets.
const BUCKETS = 10;
// Amounts are counted in thousandths of a retry so that ratios like 0.2 add up exactly: a float
// balance drifts after thousands of deposits and would let the bound slip by one.
const SCALE = 1000;

/**
 * Creates a retry budget. Share one object between the clients (or per target) whose retries
 * should be limited together: pass it as the `retryBudget` call option or to
 * `createRetryMiddleware({ budget })`.
 */
export function createRetryBudget({
  ttlMs = 10_000,
  minRetriesPerSecond = 10,
  retryRatio = 0.2,
  now = performance.now.bind(performance),
}: RetryBudgetOptions = {}): RetryBudget {
  // The same limits as tower and Finagle: a longer window remembers an outage for too long, and
  // a ratio above 1000 is certainly a unit mistake.
  if (!(ttlMs >= 1000 && ttlMs <= 60_000)) {
    throw new RangeError(`retry budget: ttlMs must be between 1000 and 60000, got ${ttlMs}`);
  }
  if (!(minRetriesPerSecond >= 0 && Number.isFinite(minRetriesPerSecond))) {
    throw new RangeError(
      `retry budget: minRetriesPerSecond must be a finite number ≥ 0, got ${minRetriesPerSecond}`,
    );
  }
  if (!(retryRatio >= 0 && retryRatio <= 1000)) {
    throw new RangeError(`retry budget: retryRatio must be between 0 and 1000, got ${retryRatio}`);
  }
  const depositAmount = Math.round(retryRatio * SCALE);
  const reserve = Math.floor(minRetriesPerSecond * (ttlMs / 1000) * SCALE);
  const bucketMs = ttlMs / BUCKETS;
  const buckets = new Array<number>(BUCKETS).fill(0);
  let current = Math.floor(now() / bucketMs);
  let windowSum = 0;

  function expire(): void {
    const bucket = Math.floor(now() / bucketMs);
    if (bucket === current) return;
    const elapsed = Math.min(bucket - current, BUCKETS);
    for (let i = 1; i <= elapsed; i++) {
      const index = (current + i) % BUCKETS;
      windowSum -= buckets[index]!;
      buckets[index] = 0;
    }
    current = bucket;
  }

  return {
    deposit() {
      expire();
      buckets[current % BUCKETS]! += depositAmount;
      windowSum += depositAmount;
    },
    withdraw() {
      expire();
      if (reserve + windowSum < SCALE) return false;
      buckets[current % BUCKETS]! -= SCALE;
      windowSum -= SCALE;
      return true;
    },
  };
}

/**
 * The budget that never refuses: every retry the policy allows is made, as in
 * nice-grpc-client-middleware-retry, which has no budget. The retry middleware's default; pass
 * a {@link createRetryBudget} to bound retries under a sustained failure.
 */
export const UNBOUNDED_RETRY_BUDGET: RetryBudget = Object.freeze({
  deposit() {},
  withdraw: () => true,
});
