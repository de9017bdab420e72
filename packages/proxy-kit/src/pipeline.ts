import type { Balancer } from '@switchyard/balancer';
import type { Discovery } from '@switchyard/discovery';
import { cancellationInterceptor } from '@switchyard/middleware-cancellation';
import { deadlineInterceptor } from '@switchyard/middleware-deadline';
import {
  authorizationInterceptor,
  identityHeaderInterceptor,
  peerIdentityInterceptor,
} from '@switchyard/middleware-identity';
import { metricsClientInterceptor, metricsServerInterceptor } from '@switchyard/middleware-metrics';
import { createRetryBudget, type RetryDefaults, retriedCall } from '@switchyard/middleware-retry';
import {
  type TracingInterceptor,
  tracingClientInterceptor,
  tracingServerInterceptor,
} from '@switchyard/middleware-tracing';
import type { Logger } from 'pino';
import { type AdmissionOptions, admission } from './admission.js';
import { balance, type EndpointStack } from './balance.js';
import { ConnectionPool, type ConnectionPoolOptions } from './connection-pool.js';
import { grpcRequestGuard } from './grpc-request-guard.js';
import type { activeHealthCheck, HealthCheckOptions } from './health-check.js';
import { EjectionBudget, type OutlierOptions, outlierBreaker } from './outlier-breaker.js';
import { type Route, router } from './route.js';
import { intercept, type Layer, type Service, stack } from './service.js';
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
}

/**
 * The path of every proxied call, top to bottom — the one place it is assembled, from the same
 * layers the apps run as nice-grpc middleware:
 *
 *   grpcRequestGuard → metrics → tracing → identity → route ─┬─ authorization → upstream call
 *     → deadline → cancellation → retry/hedging → identity header → admission → balance
 *     ─┬─ metrics → tracing → outlierBreaker → healthCheck → pool (endpoint 1)
 *      └─ …                                                       (endpoint 2) …
 *
 * Order matters: the guard answers non-gRPC requests first; the server-side layers see the call
 * as the client made it (metrics outermost, to time everything); the route picks the upstream
 * and the policy; the upstream call becomes a client call whose layers read the inbound one
 * (deadline minus offset, cancellation, trace context, caller); retries and hedges go through
 * admission and the balancer each time, so another attempt can go to another endpoint; an
 * endpoint is ready only when its breaker is closed (or lets its one probe through), its health
 * check does not say NOT_SERVING, and its pool has a connected HTTP/2 connection with a free
 * stream. Layers with nothing to do — no SDK for metrics and tracing, no identity configured —
 * are left out.
 */
export function proxyPipeline(options: PipelineOptions): Service {
  const { logger, identity } = options;
  const upstreams = new Map<string, Service>();
  for (const [name, upstream] of options.upstreams) {
    upstreams.set(name, upstreamService(upstream, logger, options.healthChecks));
  }
  const routes = options.routes.map((route) => ({
    route,
    service: stack(...routeLayers(route, identity)).service(upstreams.get(route.upstream)!),
  }));
  return stack(
    grpcRequestGuard,
    ...present(metricsServerInterceptor()),
    ...traced(tracingServerInterceptor()),
    ...(identity ? [intercept(peerIdentityInterceptor(identity))] : []),
  ).service(router(routes, [...upstreams.values()]));
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

/** An upstream: admission in front of the balancer over its endpoints' stacks. */
function upstreamService(
  upstream: UpstreamOptions,
  logger: Logger,
  healthChecks: HealthChecks | undefined,
): Service {
  const { healthCheck } = upstream;
  if (healthCheck && !healthChecks) throw new TypeError('health checks need options.healthChecks');
  const ejectionBudget = new EjectionBudget(upstream.outlier.maxEjectedPercent);
  const endpointStack: EndpointStack = (target) => {
    const { address } = target.endpoint;
    return stack(
      ...present(metricsClientInterceptor({ target: address })),
      // A CLIENT span per attempt, naming the endpoint it went to.
      ...traced(tracingClientInterceptor({ target: address })),
      outlierBreaker(upstream.outlier, ejectionBudget, address, logger),
      ...(healthCheck ? [healthChecks!(address, healthCheck, logger)] : []),
    ).service(new ConnectionPool(target.endpoint, upstream.pool, { logger, ...target }));
  };
  return stack(admission(upstream.admission)).service(
    balance(upstream.balancer, upstream.discovery, endpointStack, logger),
  );
}

/** Tracing's layer when an SDK was registered before the proxy started, else none. */
function traced(interceptor: TracingInterceptor): Layer[] {
  return interceptor.inert() ? [] : [intercept(interceptor)];
}

/** The layer of an interceptor that exists (metrics, with an SDK), or none. */
function present(interceptor: Parameters<typeof intercept>[0] | undefined): Layer[] {
  return interceptor === undefined ? [] : [intercept(interceptor)];
}
