import type { AddressInfo } from 'node:net';
import { type Balancer, type BalancerName, createBalancer } from '@switchyard/balancer';
import type { Discovery } from '@switchyard/discovery';
import { ChannelCredentials } from 'nice-grpc';
import { type Logger, pino } from 'pino';
import type { AdmissionOptions } from './admission.js';
import type { ConnectionPoolOptions } from './connection-pool.js';
import type { HealthCheckOptions } from './health-check.js';
import { type ListenerOptions, ProxyListener } from './listener.js';
import type { OutlierOptions } from './outlier-breaker.js';
import { proxyPipeline } from './pipeline.js';

/** Options of {@link startProxy}. */
export interface ProxyOptions {
  /** Where clients connect: `host:port`, or full listener options (TLS, windows, limits). */
  listen: string | ListenerOptions;
  /** The upstream endpoints, live; the caller owns it (the proxy does not close it). */
  discovery: Discovery;
  /** Default `p2c-ewma`. */
  balancer?: Balancer | BalancerName;
  /** Queue and failfast while no endpoint is ready. */
  admission?: AdmissionOptions;
  /** Passive outlier ejection. */
  outlier?: OutlierOptions;
  /** Connections to upstreams: TLS, keepalive, windows, reconnect backoff. */
  upstream?: ConnectionPoolOptions;
  /**
   * Active `grpc.health.v1` checks of every endpoint; off when absent. Credentials default to
   * the upstream TLS settings.
   */
  healthCheck?: HealthCheckOptions;
  /** Structured logger; default silent. */
  logger?: Logger;
}

/** A proxy that is serving. */
export interface RunningProxy {
  readonly address: AddressInfo;
  /**
   * Graceful shutdown: GOAWAY to clients, calls in flight finish within `graceMs` (default 10 s),
   * then upstream connections close.
   */
  close(graceMs?: number): Promise<void>;
}

/** Starts a proxy: builds the pipeline, then listens. */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const logger = options.logger ?? pino({ enabled: false });
  const balancer =
    typeof options.balancer === 'object'
      ? options.balancer
      : createBalancer(options.balancer ?? 'p2c-ewma');
  const service = proxyPipeline({
    discovery: options.discovery,
    balancer,
    admission: options.admission ?? {},
    outlier: options.outlier ?? {},
    upstream: options.upstream ?? {},
    healthCheck:
      options.healthCheck && withUpstreamCredentials(options.healthCheck, options.upstream),
    logger,
  });
  const listen = typeof options.listen === 'string' ? { address: options.listen } : options.listen;
  const listener = new ProxyListener(service, listen, logger);
  let address: AddressInfo;
  try {
    address = await listener.listen();
  } catch (error) {
    await service.close();
    throw error;
  }
  logger.info(
    { address: `${address.address}:${address.port}`, balancer: balancer.name },
    'listening',
  );
  let closing: Promise<void> | undefined;
  return {
    address,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        await listener.close(graceMs);
        await service.close();
      })();
      return closing;
    },
  };
}

/** Health checks reach upstreams the way calls do: over TLS when the upstream uses TLS. */
function withUpstreamCredentials(
  healthCheck: HealthCheckOptions,
  upstream: ConnectionPoolOptions = {},
): HealthCheckOptions {
  const tls = upstream.tls;
  if (healthCheck.credentials || !tls) return healthCheck;
  const pem = (value: unknown) => (value === undefined ? null : Buffer.from(value as string));
  return {
    ...healthCheck,
    credentials: ChannelCredentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert)),
    channelOptions: {
      ...(tls.servername ? { 'grpc.ssl_target_name_override': tls.servername } : {}),
      ...healthCheck.channelOptions,
    },
  };
}
