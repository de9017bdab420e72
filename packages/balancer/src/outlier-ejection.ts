import { type Backoff, type BackoffOptions, exponentialBackoff, Status } from '@switchyard/core';

/** Options of passive outlier ejection ({@link OutlierEjection}). */
export interface OutlierOptions {
  /** Consecutive failed calls that eject an endpoint. Default 7 (Linkerd). */
  consecutiveFailures?: number;
  /**
   * How long an ejection lasts: 1 s doubling to 60 s, ±25 % jitter (Linkerd); what is given
   * replaces only those defaults it names.
   */
  ejectionBackoff?: BackoffOptions;
  /**
   * Largest share of the endpoints ejected at once, in percent; at least one endpoint may always
   * be ejected. Default 10 (Envoy's `max_ejection_percent`). Read by {@link EjectionBudget}.
   */
  maxEjectedPercent?: number;
  /**
   * Statuses from the endpoint that count as failures. Transport failures count as the transport
   * decides (the proxy: always); the client's own cancellations never do. Default UNAVAILABLE,
   * INTERNAL, UNKNOWN, DATA_LOSS: the server-fault codes, not application answers like NOT_FOUND.
   */
  failureCodes?: readonly Status[];
}

/** The statuses {@link OutlierOptions.failureCodes} defaults to. */
export const DEFAULT_FAILURE_CODES: readonly Status[] = Object.freeze([
  Status.UNAVAILABLE,
  Status.INTERNAL,
  Status.UNKNOWN,
  Status.DATA_LOSS,
]);

/**
 * How a call that was sent to an endpoint ended, as outlier ejection reads it: `abandoned` is a
 * call the client gave up on (cancelled, or its deadline passed), which says nothing about the
 * endpoint either way.
 */
export type CallVerdict = 'succeeded' | 'failed' | 'abandoned';

/**
 * The cap on ejections shared by one set of endpoints, so that a fault that makes every endpoint
 * look bad (a bad deploy of the client, a network blip) cannot empty the pool.
 */
export class EjectionBudget {
  readonly #maxPercent: number;
  #members = 0;
  #ejected = 0;

  constructor(maxPercent = 10) {
    if (!(maxPercent >= 0 && maxPercent <= 100)) {
      throw new RangeError(`maxEjectedPercent must be within 0..100, not ${maxPercent}`);
    }
    this.#maxPercent = maxPercent;
  }

  /** An endpoint joined the set. */
  join(): void {
    this.#members++;
  }

  /** An endpoint left the set (release its slot first if it held one). */
  leave(): void {
    this.#members--;
  }

  /** Takes one ejection slot if the cap allows. */
  tryEject(): boolean {
    const max = Math.max(1, Math.floor((this.#members * this.#maxPercent) / 100));
    if (this.#ejected >= max) return false;
    this.#ejected++;
    return true;
  }

  /** Gives back a slot taken by {@link tryEject}. */
  release(): void {
    this.#ejected--;
  }
}

/** What {@link OutlierEjection} tells its transport, for logs and for readiness. */
export interface OutlierEvents {
  /** The endpoint was ejected after `consecutiveFailures` failures, for `ejectedMs`. */
  ejected?(consecutiveFailures: number, ejectedMs: number): void;
  /** A probe call succeeded: the endpoint takes calls again. */
  restored?(): void;
  /** {@link OutlierEjection.isReady} may have changed (ejected, probe due, probe sent or over). */
  readinessChanged?(): void;
}

/** `closed`: takes calls; `open`: ejected; `half-open`: the ejection is over, one probe may go. */
export type EjectionState = 'closed' | 'open' | 'half-open';

/**
 * Linkerd's consecutive-failures breaker for one endpoint, whatever the transport: after N failed
 * calls in a row the endpoint is not ready for a backoff period (sharing an
 * {@link EjectionBudget} with its peers), then exactly one probe call goes through; its success
 * restores the endpoint, its failure ejects it again for longer. A balancer simply does not see
 * an endpoint that is not ready (tower's rule), so ejection needs no special case there.
 *
 * The transport asks {@link isReady} before it picks, calls {@link sent} as a call leaves for the
 * endpoint and {@link finished} with the verdict of that same call. Used by proxy-kit (per
 * proxied call) and by the balanced channel (per grpc-js call).
 */
export class OutlierEjection {
  readonly #threshold: number;
  readonly #failureCodes: ReadonlySet<Status>;
  readonly #backoff: Backoff;
  readonly #budget: EjectionBudget;
  readonly #events: OutlierEvents;
  #state: EjectionState = 'closed';
  #failures = 0;
  #ejections = 0;
  #probeInFlight = false;
  #probeAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: OutlierOptions, budget: EjectionBudget, events: OutlierEvents = {}) {
    const {
      consecutiveFailures = 7,
      ejectionBackoff,
      failureCodes = DEFAULT_FAILURE_CODES,
    } = options;
    if (!(Number.isInteger(consecutiveFailures) && consecutiveFailures >= 1)) {
      throw new RangeError(
        `consecutiveFailures must be a whole number ≥ 1, not ${consecutiveFailures}`,
      );
    }
    this.#threshold = consecutiveFailures;
    this.#failureCodes = new Set(failureCodes);
    this.#backoff = exponentialBackoff({
      baseMs: 1_000,
      maxMs: 60_000,
      jitter: 0.25,
      ...ejectionBackoff,
    });
    this.#budget = budget;
    this.#events = events;
    budget.join();
  }

  get state(): EjectionState {
    return this.#state;
  }

  /** The probe call is in flight: the ejection's end or renewal is due with its verdict. */
  get probing(): boolean {
    return this.#probeInFlight;
  }

  /** Whether `status`, answered by the endpoint, is one of the failure codes. */
  isFailure(status: Status): boolean {
    return this.#failureCodes.has(status);
  }

  /** Whether a call may be sent now: closed, or half-open with its probe not yet sent. */
  isReady(): boolean {
    return this.#state === 'closed' || (this.#state === 'half-open' && !this.#probeInFlight);
  }

  /**
   * A call leaves for the endpoint now. Returns whether it is the probe: pass that back to
   * {@link finished}, since only the probe's verdict ends an ejection.
   */
  sent(): boolean {
    if (this.#state !== 'half-open' || this.#probeInFlight || this.#closed) return false;
    this.#probeInFlight = true;
    this.#events.readinessChanged?.();
    return true;
  }

  /** The call that {@link sent} answered `probe` for ended with `verdict`. */
  finished(probe: boolean, verdict: CallVerdict): void {
    if (this.#closed) return;
    if (verdict === 'abandoned') {
      if (!probe) return;
      // No verdict: let another call probe.
      this.#probeInFlight = false;
      this.#events.readinessChanged?.();
      return;
    }
    const failed = verdict === 'failed';
    if (this.#state === 'closed') {
      if (!failed) this.#failures = 0;
      else if (++this.#failures >= this.#threshold && this.#budget.tryEject()) this.#eject();
      return;
    }
    if (!probe) return; // calls sent before the ejection say nothing new
    this.#probeInFlight = false;
    if (failed) {
      this.#eject();
      return;
    }
    this.#state = 'closed';
    this.#failures = 0;
    this.#ejections = 0;
    this.#budget.release();
    this.#events.restored?.();
    this.#events.readinessChanged?.();
  }

  /** Why the endpoint is not ready, or `undefined` when it is. */
  notReadyReason(): string | undefined {
    if (this.#state === 'open') {
      const ms = Math.max(0, Math.round(this.#probeAt - performance.now()));
      return `ejected after ${this.#threshold} consecutive failures, probing in ${ms} ms`;
    }
    if (this.#probeInFlight) {
      return 'ejected, a probe call is in flight';
    }
    return undefined;
  }

  /** The endpoint left the set: frees its budget slot; later verdicts are ignored. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#state !== 'closed') this.#budget.release();
    this.#state = 'closed';
    this.#budget.leave();
  }

  #eject(): void {
    const ms = this.#backoff(this.#ejections++);
    this.#state = 'open';
    this.#probeAt = performance.now() + ms;
    this.#events.ejected?.(this.#failures, ms);
    this.#events.readinessChanged?.();
    this.#timer = setTimeout(() => {
      this.#state = 'half-open';
      this.#events.readinessChanged?.();
    }, ms);
    // An ejection ending is no reason to keep a process alive.
    this.#timer.unref();
  }
}
