import { type Clock, type Load, monotonicClock } from './load.js';

/** Options of {@link PeakEwma}. */
export interface PeakEwmaOptions {
  /** Estimate of an endpoint nothing has been measured for yet. Default 30 ms (Linkerd). */
  defaultRttMs?: number;
  /** Time constant τ of the moving average, and of the decay of an idle estimate. Default 10 s (Linkerd, Finagle). */
  decayMs?: number;
  /** Time constant of the fading of a peak (a sample above the estimate). Default 500 ms. */
  peakDecayMs?: number;
  /** Default `performance.now`. */
  now?: Clock;
}

/**
 * Peak-EWMA latency estimate × pending calls, the load measure of Finagle, tower and Linkerd.
 *
 * The estimate is the greater of a moving average of the samples and the last peak. A sample
 * weighs `1 − e^(−Δt/τ)`, Δt being the time since the last update, and at least `1/(n + 1)`
 * for the n-th, so that the first samples make a plain mean with the default (which counts as
 * one) instead of moving off it by a few ‰ each, which at 250 samples a second held a 0.5 ms
 * endpoint near 30 ms for half a minute. A sample above the estimate takes over at once as the
 * peak (the balancer reacts to a slow endpoint on its first slow answer), which then fades with
 * its own, shorter time constant. Reading the cost decays both towards zero, as tower
 * does, so an endpoint that was avoided for a while is tried again. The cost is
 * `max(average × (pending + 1), peak)`: the time until one more call would be answered, queued
 * behind the pending ones at the usual pace, and no less than the last peak — a peak is one
 * answer's outlier, and multiplying it by the queue priced a healthy endpoint with one call
 * pending at twice its worst moment (Linkerd multiplies its single estimate).
 *
 * Where this parts from Linkerd, and why: there the peak *is* the average, and fades with τ
 * (10 s). In a Node.js process a pause of the event loop (a major GC, a deoptimisation) holds
 * every answer at once: one pause of 130 ms, measured in a client calling three backends 500
 * times a second, priced the two healthy ones at ~100 ms for tens of seconds, above the one
 * answering 50 ms late, which then took 2.5% of the calls and set the p99 at 51 ms (issue 22).
 * A peak that fades in seconds forgets such a pause, while an endpoint that is slow at every
 * answer keeps both its peak and its average up.
 */
export class PeakEwma implements Load {
  pending = 0;
  readonly #decayMs: number;
  readonly #peakDecayMs: number;
  readonly #now: Clock;
  #average: number;
  #peak: number;
  #samples = 0;
  #updatedAt: number;

  constructor({
    defaultRttMs = 30,
    decayMs = 10_000,
    peakDecayMs = 500,
    now = monotonicClock,
  }: PeakEwmaOptions = {}) {
    for (const [name, value] of Object.entries({ defaultRttMs, decayMs, peakDecayMs })) {
      if (!(value > 0)) throw new RangeError(`peak-EWMA needs ${name} > 0, got ${value}`);
    }
    this.#decayMs = decayMs;
    this.#peakDecayMs = peakDecayMs;
    this.#now = now;
    this.#average = defaultRttMs;
    this.#peak = defaultRttMs;
    this.#updatedAt = now();
  }

  /** The current round-trip estimate in ms, decayed to now. */
  get rttMs(): number {
    this.#decayToNow();
    return Math.max(this.#average, this.#peak);
  }

  cost(): number {
    this.#decayToNow();
    return Math.max(this.#average * (this.pending + 1), this.#peak);
  }

  start(): number {
    this.pending++;
    return this.#now();
  }

  settle(startedAt: number): void {
    if (this.pending > 0) this.pending--;
    const now = this.#now();
    const rtt = Math.max(0, now - startedAt);
    this.#samples++;
    const weight = Math.max(1 - this.#advance(now), 1 / (this.#samples + 1));
    this.#average = this.#average * (1 - weight) + rtt * weight;
    if (rtt > this.#peak) this.#peak = rtt;
  }

  abandon(): void {
    if (this.pending > 0) this.pending--;
  }

  /** Decays both parts towards zero up to now, as reading an estimate does. */
  #decayToNow(): void {
    this.#average *= this.#advance(this.#now());
  }

  /** Fades the peak up to `now`; returns the average's decay factor over the same time. */
  #advance(now: number): number {
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#updatedAt = now;
    this.#peak *= Math.exp(-elapsed / this.#peakDecayMs);
    return Math.exp(-elapsed / this.#decayMs);
  }
}
