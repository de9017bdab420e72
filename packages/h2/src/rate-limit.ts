/**
 * Counts events in one-second windows: {@link exceeded} says when more than `max` happened in
 * the current one. A fixed window (not a sliding one) is enough to tell a flood from a peer's
 * normal bursts, and costs one clock read per event counted.
 */
export class RateLimit {
  readonly #max: number;
  #windowStart = 0;
  #count = 0;

  constructor(maxPerSecond: number) {
    this.#max = maxPerSecond;
  }

  /** Counts one event; true when it is one too many. */
  exceeded(): boolean {
    const now = performance.now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#count = 0;
    }
    return ++this.#count > this.#max;
  }
}
