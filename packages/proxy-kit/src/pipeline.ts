import type { MeterProvider } from '@opentelemetry/api';
import type { Balancer } from '@switchyard/balancer';
import type { Discovery } from '@switchyard/discovery';
import { cancellationInterceptor } from '@switchyard/middleware-cancellation/interceptors';
import { deadlineInterceptor } from '@switchyard/middleware-deadline/interceptors';
import {
  authorizationInterceptor,
  identityHeaderInterceptor,
  peerIdentityInterceptor,
} from '@switchyard/middleware-identity/interceptors';
import {
  metricsClientInterceptor,
  metricsServerInterceptor,
} from '@switchyard/middleware-metrics/interceptors';
import {
  createRetryBudget,
  type RetryDefaults,
  retriedCall,
} from '@switchyard/middleware-retry/interceptors';
import {
  type TracingInterceptor,
  tracingClientInterceptor,
  tracingServerInterceptor,
} from '@switchyard/middleware-tracing/interceptors';
import type { Logger } from 'pino';
import { type AccessLogOptions, accessLog } from './access-log.js';
import { type AdmissionOptions, admission } from './admission.js';
import { type BalanceService, balance, type EndpointStack } from './balance.js';
import { ConnectionPool, type ConnectionPoolOptions } from './connection-pool.js';
import { grpcRequestGuard } from './grpc-request-guard.js';
import type { activeHealthCheck, HealthCheckOptions } from './health-check.js';
import { countedCalls, type PipelineCalls, requestSizeLimit } from './limits.js';
import { EjectionBudget, type OutlierOptions, outlierBreaker } from './outlier-breaker.js';
import { type Route, router } from './route.js';
import { intercept, type Layer, type Service, stack } from './service.js';
import { ProxyStats } from './stats.js';
import { upstreamCall } from './upstream-call.js';

/** One named set of endpoints and how calls reach them. */
export interface UpstreamOptions {
  discovery: Discovery;
  balancer: Balancer;
  admission: AdmissionOptions;
  outlier: OutlierOptions;
  pool: ConnectionPoolOptions;
  /** Active `grpc.health.v1` checks; none when absent. */
  healthCheck?: HealthCheckOptions;
}

/** The health-check layer's maker, loaded only by a proxy that checks health (it brings grpc-js). */
export type HealthChecks = typeof activeHealthCheck;

/** How the proxy establishes and forwards who called. */
export interface IdentityOptions {
  /** The header the verified caller is named in upstream. Default `l5d-client-id`. */
  identityHeader?: string;
  /** Peers (identity globs) whose own identity header is believed. Default: none. */
  trustedProxies?: readonly string[];
}

/** Everything the data plane is built from. */
export interface PipelineOptions {
  /** The upstreams routes send calls to, by name. */
  upstreams: ReadonlyMap<string, UpstreamOptions>;
  /** Routes in order; the first whose methods match a call takes it. */
  routes: readonly Route[];
  /** Verified client identities: established from mTLS, forwarded upstream; off when absent. */
  identity?: IdentityOptions;
  /** Needed when an upstream has `healthCheck`. */
  healthChecks?: HealthChecks;
  logger: Logger;
  /** Where routes and endpoints count their calls; kept across reloads. Default: a new one. */
  stats?: ProxyStats;
  /**
   * Where the metrics layers create their instruments (the admin's `/metrics`). Default: the
   * global provider, whose layers are left out when no SDK registered one.
   */
  meterProvider?: MeterProvider;
  /** An access log line per call, sampled and filtered; none when absent. */
  accessLog?: AccessLogOptions;
  /** Calls in flight through the whole proxy; more fail at once (RESOURCE_EXHAUSTED). */
  maxConcurrentCalls?: number;
  /** Counts this pipeline's calls in flight (for a reload to wait for). */
  calls?: PipelineCalls;
}

/** The data plane: the service calls enter, and the balancers of its upstreams by name. */
export interface Pipeline {
  readonly service: Service;
  readonly upstreams: ReadonlyMap<string, BalanceService>;
}

/**
 * The path of every proxied call, top to bottom — the one place it is assembled, from the same
 * layers the apps run as nice-grpc middleware:
 *
 *   grpcRequestGuard → metrics → tracing → identity → access log → proxy's count and limit
 *     → route ─┬─ route's count and limit → request size limit → authorization → upstream call
 *     → deadline → cancellation → retry/hedging → identity header → admission → balance
 *     ─┬─ metrics → tracing → outlierBreaker → healthCheck → pool (endpoint 1)
 *      └─ …                                                       (endpoint 2) …
 *
 * Order matters: the guard answers non-gRPC requests first; the server-side layers see the call
 * as the client made it (metrics outermost, to time everything); the access log sees every call
 * with its caller known, the concurrency limits' refusals too; the route picks the upstream
 * and the policy; the upstream call becomes a client call whose layers read the inbound one
 * (deadline minus offset, cancellation, trace context, caller); retries and hedges go through
 * admission and the balancer each time, so another attempt can go to another endpoint; an
 * endpoint is ready only when its breaker is closed (or lets its one probe through), its health
 * check does not say NOT_SERVING, and its pool has a connected HTTP/2 connection with a free
 * stream. Layers with nothing to do — no SDK for metrics and tracing, no identity configured —
 * are left out.
 */
export function proxyPipeline(options: PipelineOptions): Pipeline {
  const { logger, identity, stats = new ProxyStats(), meterProvider } = options;
  const balancers = new Map<string, BalanceService>();
  const upstreams = new Map<string, Service>();
  for (const [name, upstream] of options.upstreams) {
    const endpoints = balanceEndpoints(
      name,
      upstream,
      logger,
      options.healthChecks,
      stats,
      meterProvider,
    );
    balancers.set(name, endpoints);
    upstreams.set(name, stack(admission(upstream.admission)).service(endpoints));
  }
  const routes = options.routes.map((route) => ({
    route,
    service: stack(
      countedCalls(stats.route(route.name), {
        maxConcurrentCalls: route.maxConcurrentCalls,
        what: `route ${route.name}`,
        route: route.name,
      }),
      ...(route.maxRequestMessageBytes === undefined
        ? []
        : [requestSizeLimit(route.maxRequestMessageBytes)]),
      ...routeLayers(route, identity),
    ).service(upstreams.get(route.upstream)!),
  }));
  stats.keepRoutes(options.routes.map((route) => route.name));
  const service = stack(
    grpcRequestGuard,
    ...present(metricsServerInterceptor({ meterProvider })),
    ...traced(tracingServerInterceptor()),
    ...(identity ? [intercept(peerIdentityInterceptor(identity))] : []),
    ...(options.accessLog ? [accessLog(logger, options.accessLog)] : []),
    countedCalls(stats.inbound, {
      maxConcurrentCalls: options.maxConcurrentCalls,
      what: 'the proxy',
      pipeline: options.calls,
    }),
  ).service(router(routes, [...upstreams.values()]));
  return { service, upstreams: balancers };
}

/** One route's layers, from the served call to its upstream's admission. */
function routeLayers(route: Route, identity: IdentityOptions | undefined): Layer[] {
  const defaults: RetryDefaults = {
    budget: createRetryBudget(route.retryBudget),
    random: Math.random,
  };
  const retry = route.retry;
  const idempotent = route.idempotent;
  return [
    ...(route.authorization
      ? [intercept(authorizationInterceptor({ policy: route.authorization }))]
      : []),
    upstreamCall,
    intercept(deadlineInterceptor({ maxDeadline: route.timeoutMs })),
    intercept(cancellationInterceptor),
    // The proxy's transparent replay is this layer too: a stream refused unprocessed goes again.
    intercept((call, next) => retriedCall(call, next, retry, defaults, idempotent)),
    ...(identity ? [intercept(identityHeaderInterceptor(identity))] : []),
  ];
}

/** An upstream's balancer over its endpoints' stacks (admission goes in front of it). */
function balanceEndpoints(
  name: string,
  upstream: UpstreamOptions,
  logger: Logger,
  healthChecks: HealthChecks | undefined,
  stats: ProxyStats,
  meterProvider: MeterProvider | undefined,
): BalanceService {
  const { healthCheck } = upstream;
  if (healthCheck && !healthChecks) throw new TypeError('health checks need options.healthChecks');
  const ejectionBudget = new EjectionBudget(upstream.outlier.maxEjectedPercent);
  const endpointStack: EndpointStack = (target) => {
    const { address } = target.endpoint;
    const pool = new ConnectionPool(target.endpoint, upstream.pool, { logger, ...target });
    target.stats.connections = () => pool.connectionCount;
    return stack(
      ...present(metricsClientInterceptor({ target: address, meterProvider })),
      // A CLIENT span per attempt, naming the endpoint it went to.
      ...traced(tracingClientInterceptor({ target: address })),
      outlierBreaker(upstream.outlier, ejectionBudget, address, logger, target.stats),
      ...(healthCheck ? [healthChecks!(address, healthCheck, logger)] : []),
    ).service(pool);
  };
  return balance(upstream.balancer, upstream.discovery, endpointStack, logger, {
    acquire: (address) => stats.acquireEndpoint(name, address),
    release: (address) => stats.releaseEndpoint(name, address),
  });
}

/** Tracing's layer when an SDK was registered before the proxy started, else none. */
function traced(interceptor: TracingInterceptor): Layer[] {
  return interceptor.inert() ? [] : [intercept(interceptor)];
}

/** The layer of an interceptor that exists (metrics, with an SDK), or none. */
function present(interceptor: Parameters<typeof intercept>[0] | undefined): Layer[] {
  return interceptor === undefined ? [] : [intercept(interceptor)];
}
