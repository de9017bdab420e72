import { type Backoff, type BackoffOptions, exponentialBackoff, Status } from '@switchyard/core';
import type { Logger } from 'pino';
import type { CallObserver, ProxyCall } from './proxy-call.js';
import { type Layer, LayerService, type Service } from './service.js';

/** Options of passive outlier ejection. */
export interface OutlierOptions {
  /** Consecutive failed calls that eject an endpoint. Default 7 (Linkerd). */
  consecutiveFailures?: number;
  /** How long an ejection lasts: 1 s doubling to 60 s, ±25 % jitter (Linkerd). */
  ejectionBackoff?: BackoffOptions;
  /**
   * Largest share of the endpoints ejected at once, in percent; at least one endpoint may always
   * be ejected. Default 10 (Envoy's `max_ejection_percent`).
   */
  maxEjectedPercent?: number;
  /**
   * Statuses from the upstream that count as failures. Transport failures (resets, lost
   * connections) always count; the client's own cancellations never do. Default UNAVAILABLE,
   * INTERNAL, UNKNOWN, DATA_LOSS: the server-fault codes, not application answers like NOT_FOUND.
   */
  failureCodes?: readonly Status[];
}

const DEFAULT_FAILURE_CODES = [
  Status.UNAVAILABLE,
  Status.INTERNAL,
  Status.UNKNOWN,
  Status.DATA_LOSS,
];

/**
 * The cap on ejections shared by one set of endpoints, so that a fault that makes every endpoint
 * look bad (a bad deploy of the client, a network blip) cannot empty the pool.
 */
export class EjectionBudget {
  readonly #maxPercent: number;
  #members = 0;
  #ejected = 0;

  constructor(maxPercent = 10) {
    this.#maxPercent = maxPercent;
  }

  join(): void {
    this.#members++;
  }

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

  release(): void {
    this.#ejected--;
  }
}

type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * Linkerd's consecutive-failures breaker: after N failures in a row the endpoint is not ready for
 * a backoff period, then exactly one probe call goes through; its success restores the endpoint,
 * its failure ejects it again for longer. Failures are classified on the call's final status,
 * whether it came in the response headers (Trailers-Only) or in the trailers.
 */
class OutlierBreaker extends LayerService implements CallObserver {
  readonly #threshold: number;
  readonly #failureCodes: ReadonlySet<Status>;
  readonly #backoff: Backoff;
  readonly #budget: EjectionBudget;
  readonly #address: string;
  readonly #logger: Logger;
  readonly #listeners: (() => void)[] = [];
  #state: BreakerState = 'closed';
  #failures = 0;
  #ejections = 0;
  #probe: ProxyCall | undefined;
  #timer: NodeJS.Timeout | undefined;
  #probeAt = 0;

  constructor(
    inner: Service,
    options: OutlierOptions,
    budget: EjectionBudget,
    address: string,
    logger: Logger,
  ) {
    super(inner);
    const {
      consecutiveFailures = 7,
      ejectionBackoff = { baseMs: 1_000, maxMs: 60_000, jitter: 0.25 },
      failureCodes = DEFAULT_FAILURE_CODES,
    } = options;
    this.#threshold = consecutiveFailures;
    this.#failureCodes = new Set(failureCodes);
    this.#backoff = exponentialBackoff(ejectionBackoff);
    this.#budget = budget;
    this.#address = address;
    this.#logger = logger;
    budget.join();
  }

  override isReady(): boolean {
    if (this.#state === 'closed') return this.inner.isReady();
    return this.#state === 'half-open' && this.#probe === undefined && this.inner.isReady();
  }

  override call(call: ProxyCall): void {
    if (this.#state === 'half-open') this.#probe = call;
    call.observe(this);
    this.inner.call(call);
  }

  override onReady(listener: () => void): void {
    this.#listeners.push(listener);
    this.inner.onReady(listener);
  }

  override notReadyReason(): string {
    if (this.#state === 'open') {
      const ms = Math.max(0, Math.round(this.#probeAt - performance.now()));
      return `ejected after ${this.#threshold} consecutive failures, probing in ${ms} ms`;
    }
    if (this.#probe !== undefined) return 'ejected, a probe call is in flight';
    return this.inner.notReadyReason();
  }

  override close(): Promise<void> {
    clearTimeout(this.#timer);
    if (this.#state !== 'closed') this.#budget.release();
    this.#state = 'closed';
    this.#budget.leave();
    return this.inner.close();
  }

  finished(call: ProxyCall): void {
    if (call.origin === 'client') {
      if (call === this.#probe) this.#probe = undefined; // no verdict; let another call probe
      return;
    }
    const failed = call.origin === 'proxy' || this.#failureCodes.has(call.status);
    if (this.#state === 'closed') {
      if (!failed) this.#failures = 0;
      else if (++this.#failures >= this.#threshold && this.#budget.tryEject()) this.#eject();
      return;
    }
    if (call !== this.#probe) return; // calls sent before the ejection say nothing new
    this.#probe = undefined;
    if (failed) {
      this.#eject();
      return;
    }
    this.#state = 'closed';
    this.#failures = 0;
    this.#ejections = 0;
    this.#budget.release();
    this.#logger.info({ endpoint: this.#address }, 'endpoint restored after a successful probe');
  }

  #eject(): void {
    const ms = this.#backoff(this.#ejections++);
    this.#state = 'open';
    this.#probeAt = performance.now() + ms;
    this.#logger.warn(
      { endpoint: this.#address, consecutiveFailures: this.#failures, ejectedMs: Math.round(ms) },
      'endpoint ejected',
    );
    this.#timer = setTimeout(() => {
      this.#state = 'half-open';
      for (const listener of this.#listeners) listener();
    }, ms);
    this.#timer.unref();
  }
}

/** Per-endpoint layer: passive outlier ejection sharing `budget` with the endpoint's peers. */
export function outlierBreaker(
  options: OutlierOptions,
  budget: EjectionBudget,
  address: string,
  logger: Logger,
): Layer {
  return (inner) => new OutlierBreaker(inner, options, budget, address, logger);
}
