import { type HealthWatch, watchHealth } from '@switchyard/middleware-health';
import type { ChannelCredentials, ChannelOptions } from 'nice-grpc';
import type { Logger } from 'pino';
import { type Layer, LayerService, type Service } from './service.js';

/** Options of active health checking (`grpc.health.v1`); off unless given. */
export interface HealthCheckOptions {
  /** Service name to check; `''` (default) is the whole server. */
  service?: string;
  /** Time between Checks (Watch pushes changes in between). Default 5 s. */
  intervalMs?: number;
  /** A Check unanswered this long marks the endpoint unhealthy. Default 1 s. */
  timeoutMs?: number;
  /** Credentials of the health channel; default plaintext, as the upstream connections. */
  credentials?: ChannelCredentials;
  /** grpc-js options of the health channel, e.g. `grpc.ssl_target_name_override`. */
  channelOptions?: ChannelOptions;
}

/**
 * Per-endpoint layer: the endpoint is not ready while its health service says NOT_SERVING (or
 * does not know the service), through middleware-health's watcher — Watch for instant changes,
 * Checks with a deadline to catch a hung process. An endpoint not yet heard from is ready, as in
 * Envoy, so adding health checks never delays a new endpoint.
 */
class ActiveHealthCheck extends LayerService {
  readonly #watch: HealthWatch;
  readonly #listeners: (() => void)[] = [];

  constructor(inner: Service, address: string, options: HealthCheckOptions, logger: Logger) {
    super(inner);
    this.#watch = watchHealth({
      address,
      service: options.service ?? '',
      intervalMs: options.intervalMs,
      timeoutMs: options.timeoutMs,
      credentials: options.credentials,
      channelOptions: options.channelOptions,
      onChange: (transition) => {
        logger.info(
          {
            endpoint: address,
            from: transition.from,
            to: transition.to,
            reason: transition.reason,
          },
          'endpoint health changed',
        );
        if (this.#healthy()) for (const listener of this.#listeners) listener();
      },
    });
  }

  override isReady(): boolean {
    return this.#healthy() && this.inner.isReady();
  }

  override onReady(listener: () => void): void {
    this.#listeners.push(listener);
    this.inner.onReady(listener);
  }

  override notReadyReason(): string {
    if (this.#healthy()) return this.inner.notReadyReason();
    return `health check: ${this.#watch.lastTransition?.reason ?? this.#watch.status}`;
  }

  override close(): Promise<void> {
    this.#watch.close();
    return this.inner.close();
  }

  #healthy(): boolean {
    const status = this.#watch.status;
    return status === 'SERVING' || status === 'UNKNOWN';
  }
}

/** Per-endpoint layer: active `grpc.health.v1` checks of the endpoint at `address`. */
export function activeHealthCheck(
  address: string,
  options: HealthCheckOptions,
  logger: Logger,
): Layer {
  return (inner) => new ActiveHealthCheck(inner, address, options, logger);
}
