import { type Clock, type Load, monotonicClock } from './load.js';

/** Options of {@link PeakEwma}. */
export interface PeakEwmaOptions {
  /** Estimate of an endpoint nothing has been measured for yet. Default 30 ms (Linkerd). */
  defaultRttMs?: number;
  /** Time constant τ of the decay towards lower samples. Default 10 s (Linkerd, Finagle). */
  decayMs?: number;
  /** Default `performance.now`. */
  now?: Clock;
}

/**
 * Peak-EWMA latency estimate × pending calls, the load measure of Finagle, tower and Linkerd.
 *
 * A sample above the estimate replaces it at once (the balancer reacts to a slow endpoint on its
 * first slow answer); a sample below pulls the estimate down with weight `1 − e^(−Δt/τ)`, Δt being
 * the time since the last update, so one fast answer cannot undo a slow spell. Reading the cost
 * decays the estimate towards zero the same way, as tower does, so an endpoint that was avoided
 * for a while is tried again. The cost is `estimate × (pending + 1)`: the estimated time until
 * one more call would be answered.
 */
export class PeakEwma implements Load {
  pending = 0;
  readonly #decayMs: number;
  readonly #now: Clock;
  #estimate: number;
  #updatedAt: number;

  constructor({ defaultRttMs = 30, decayMs = 10_000, now = monotonicClock }: PeakEwmaOptions = {}) {
    if (!(defaultRttMs > 0 && decayMs > 0)) {
      throw new RangeError('peak-EWMA needs defaultRttMs > 0 and decayMs > 0');
    }
    this.#decayMs = decayMs;
    this.#now = now;
    this.#estimate = defaultRttMs;
    this.#updatedAt = now();
  }

  /** The current round-trip estimate in ms, decayed to now. */
  get rttMs(): number {
    this.#update(0, this.#now());
    return this.#estimate;
  }

  cost(): number {
    return this.rttMs * (this.pending + 1);
  }

  start(): number {
    this.pending++;
    return this.#now();
  }

  settle(startedAt: number): void {
    if (this.pending > 0) this.pending--;
    const now = this.#now();
    this.#update(Math.max(0, now - startedAt), now);
  }

  #update(rtt: number, now: number): void {
    if (rtt > this.#estimate) {
      this.#estimate = rtt;
    } else {
      const decay = Math.exp(-Math.max(0, now - this.#updatedAt) / this.#decayMs);
      this.#estimate = this.#estimate * decay + rtt * (1 - decay);
    }
    this.#updatedAt = now;
  }
}
