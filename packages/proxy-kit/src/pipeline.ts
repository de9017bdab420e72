import type { Balancer } from '@switchyard/balancer';
import type { Discovery } from '@switchyard/discovery';
import type { Logger } from 'pino';
import { type AdmissionOptions, admission } from './admission.js';
import { balance, type EndpointStack } from './balance.js';
import { ConnectionPool, type ConnectionPoolOptions } from './connection-pool.js';
import { grpcRequestGuard } from './grpc-request-guard.js';
import { activeHealthCheck, type HealthCheckOptions } from './health-check.js';
import { EjectionBudget, type OutlierOptions, outlierBreaker } from './outlier-breaker.js';
import { type Service, stack } from './service.js';

/** Everything the data plane is built from. */
export interface PipelineOptions {
  discovery: Discovery;
  balancer: Balancer;
  admission: AdmissionOptions;
  outlier: OutlierOptions;
  upstream: ConnectionPoolOptions;
  /** Active `grpc.health.v1` checks; none when absent. */
  healthCheck?: HealthCheckOptions;
  logger: Logger;
}

/**
 * The path of every proxied call, top to bottom — the one place it is assembled.
 *
 *   grpcRequestGuard → admission → balance ─┬─ outlierBreaker → healthCheck → pool (endpoint 1)
 *                                           └─ outlierBreaker → healthCheck → pool (endpoint 2) …
 *
 * Order matters: the guard answers non-gRPC requests before they take a queue slot; admission
 * queues only while no endpoint is ready; balance picks among ready endpoints, and an endpoint is
 * ready only when its breaker is closed (or lets its one probe through), its health check does
 * not say NOT_SERVING, and its pool has a connected HTTP/2 connection with a free stream.
 */
export function proxyPipeline(options: PipelineOptions): Service {
  const { discovery, balancer, logger } = options;
  const ejectionBudget = new EjectionBudget(options.outlier.maxEjectedPercent);

  const endpointStack: EndpointStack = (target) => {
    const { address } = target.endpoint;
    return stack(
      outlierBreaker(options.outlier, ejectionBudget, address, logger),
      ...(options.healthCheck ? [activeHealthCheck(address, options.healthCheck, logger)] : []),
    ).service(new ConnectionPool(target.endpoint, options.upstream, { logger, ...target }));
  };

  return stack(grpcRequestGuard, admission(options.admission)).service(
    balance(balancer, discovery, endpointStack, logger),
  );
}
