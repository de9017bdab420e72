import {
  type CallVerdict,
  type EjectionBudget,
  OutlierEjection,
  type OutlierOptions,
} from '@switchyard/balancer';
import type { Call, Outcome } from '@switchyard/core';
import type { Logger } from 'pino';
import { type Layer, LayerService, type Service } from './service.js';
import type { EndpointStats } from './stats.js';

export { EjectionBudget, type OutlierOptions } from '@switchyard/balancer';

/**
 * Linkerd's consecutive-failures breaker over one endpoint (@switchyard/balancer's
 * `OutlierEjection`, which the balanced channel runs too): after N failed attempts in a row the
 * endpoint is not ready for a backoff period, then exactly one probe goes through; its success
 * restores the endpoint, its failure ejects it again for longer.
 *
 * An attempt's verdict comes from its outcome: a transport failure (reset, lost connection) or a
 * server-fault status from the upstream is a failure, an application answer (NOT_FOUND…) a
 * success, and an attempt cancelled on this side — by its client, a deadline or a hedge that won
 * elsewhere — says nothing about the endpoint.
 */
class OutlierBreaker extends LayerService {
  readonly #ejection: OutlierEjection;
  readonly #listeners: (() => void)[] = [];

  constructor(
    inner: Service,
    options: OutlierOptions,
    budget: EjectionBudget,
    address: string,
    logger: Logger,
    stats: EndpointStats | undefined,
  ) {
    super(inner);
    this.#ejection = new OutlierEjection(options, budget, {
      ejected: (consecutiveFailures, ejectedMs) => {
        if (stats) {
          stats.ejections++;
          stats.ejected = true;
        }
        logger.warn(
          { endpoint: address, consecutiveFailures, ejectedMs: Math.round(ejectedMs) },
          'endpoint ejected',
        );
      },
      restored: () => {
        if (stats) stats.ejected = false;
        logger.info({ endpoint: address }, 'endpoint restored after a successful probe');
      },
      readinessChanged: () => {
        if (this.isReady()) for (const listener of this.#listeners) listener();
      },
    });
  }

  override isReady(): boolean {
    return this.#ejection.isReady() && this.inner.isReady();
  }

  override call(call: Call): Promise<Outcome> {
    const probe = this.#ejection.sent();
    return this.inner.call(call).then((outcome) => {
      this.#ejection.finished(probe, this.#verdict(outcome));
      return outcome;
    });
  }

  override onReady(listener: () => void): void {
    this.#listeners.push(listener);
    this.inner.onReady(listener);
  }

  override notReadyReason(): string {
    return this.#ejection.notReadyReason() ?? this.inner.notReadyReason();
  }

  override close(): Promise<void> {
    this.#ejection.close();
    return this.inner.close();
  }

  #verdict(outcome: Outcome): CallVerdict {
    if (outcome.origin === 'transport') return 'failed';
    if (outcome.origin === 'server') {
      return this.#ejection.isFailure(outcome.status) ? 'failed' : 'succeeded';
    }
    return 'abandoned';
  }
}

/** Per-endpoint layer: passive outlier ejection sharing `budget` with the endpoint's peers. */
export function outlierBreaker(
  options: OutlierOptions,
  budget: EjectionBudget,
  address: string,
  logger: Logger,
  stats?: EndpointStats,
): Layer {
  return (inner) => new OutlierBreaker(inner, options, budget, address, logger, stats);
}
