import type { AddressInfo } from 'node:net';
import type { MeterProvider } from '@opentelemetry/api';
import { type Balancer, type BalancerName, createBalancer } from '@switchyard/balancer';
import type { Status } from '@switchyard/core';
import type { Discovery } from '@switchyard/discovery';
import {
  type AuthorizationPolicy,
  CompiledPolicy,
  compileAuthorizationPolicy,
} from '@switchyard/middleware-identity/interceptors';
import type { RetryBudgetOptions } from '@switchyard/middleware-retry/interceptors';
import { type Logger, pino } from 'pino';
import type { AccessLogOptions } from './access-log.js';
import type { AdmissionOptions } from './admission.js';
import type { BalanceService } from './balance.js';
import type { ConnectionPoolOptions } from './connection-pool.js';
import type { HealthCheckOptions } from './health-check.js';
import { PipelineCalls } from './limits.js';
import { type ListenerOptions, ProxyListener } from './listener.js';
import type { OutlierOptions } from './outlier-breaker.js';
import {
  type IdentityOptions,
  type Pipeline,
  proxyPipeline,
  type UpstreamOptions,
} from './pipeline.js';
import type { Route } from './route.js';
import { ProxyStats } from './stats.js';

/** One upstream: its endpoints and how calls reach them. */
export interface UpstreamDefinition {
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
}

/** Where some methods go, and with what policy. */
export interface RouteDefinition {
  /** For logs and errors. Default `routes[index]`. */
  name?: string;
  /** `package.Service/Method` globs; `**` is every method. */
  methods: readonly string[];
  /** The upstream's name; `default` (the top-level one) unless given. */
  upstream?: string;
  /** Cap and default of every call's deadline, ms. Default: none. */
  timeoutMs?: number;
  /** The methods may be retried on `retry.codes` and hedged. Default `false`. */
  idempotent?: boolean;
  /** Retries of idempotent methods (transparent retries happen on every route). */
  retry?: {
    /** Retries after the first attempt. Default 2. */
    maxAttempts?: number;
    /** Default UNAVAILABLE, plus the other codes of middleware-retry's default. */
    codes?: readonly Status[];
    /** Backoff ceiling of the first retry, ms. Default 25 (Envoy's). */
    baseDelayMs?: number;
    /** Largest backoff ceiling, ms. Default 250 (Envoy's). */
    maxDelayMs?: number;
    /** Requests kept for a replay up to this many bytes. Default 65,536. */
    bufferLimitBytes?: number;
  };
  /** Hedging of idempotent methods (gRFC A6). */
  hedging?: { maxAttempts: number; delayMs?: number };
  /** The route's retry budget. Default: 20 % of calls plus 10 retries/s over 10 s. */
  retryBudget?: RetryBudgetOptions;
  /** Who may call the route's methods (needs verified client certificates); none: everyone. */
  authorization?: AuthorizationPolicy | CompiledPolicy;
  /** Calls in flight on the route; more fail at once with RESOURCE_EXHAUSTED. Default: no limit. */
  maxConcurrentCalls?: number;
  /** Larger request messages end the call with RESOURCE_EXHAUSTED. Default: the proxy's. */
  maxRequestMessageBytes?: number;
}

/** Options of {@link startProxy}. */
export interface ProxyOptions extends UpstreamDefinition {
  /** Where clients connect: `host:port`, or full listener options (TLS, windows, limits). */
  listen: string | ListenerOptions;
  /** More upstreams, by name, for routes; the top-level one is named `default`. */
  upstreams?: Readonly<Record<string, UpstreamDefinition>>;
  /** Routes in order, the first match wins. Default: every method to `default`. */
  routes?: readonly RouteDefinition[];
  /**
   * Verified client identities: the caller proven by mTLS is named upstream in the identity
   * header, and a copy of that header from anyone else is removed. On when the listener
   * verifies client certificates, unless `false`.
   */
  identity?: IdentityOptions | false;
  /** Structured logger; default silent. */
  logger?: Logger;
  /** An access log line per call (at `info`, `msg: "call"`), sampled and filtered; none when absent. */
  accessLog?: AccessLogOptions;
  /**
   * Where the metrics layers create their instruments, e.g. the admin listener's (see
   * `startAdmin`). Default: the global provider, when an SDK registered one.
   */
  meterProvider?: MeterProvider;
  /** Where routes and endpoints count their calls (the admin's metrics observe it). Default: a new one. */
  stats?: ProxyStats;
  /**
   * Calls in flight through the whole proxy (every connection of the listener); more fail at
   * once with RESOURCE_EXHAUSTED. Default: no limit (each connection's `maxConcurrentStreams`).
   */
  maxConcurrentCalls?: number;
  /**
   * Request messages larger than this end their call with RESOURCE_EXHAUSTED, on every route
   * that sets no limit of its own. Default: no limit (messages pass through unread).
   */
  maxRequestMessageBytes?: number;
}

/** What {@link RunningProxy.reload} can change: everything but where the proxy listens. */
export type ReloadOptions = Omit<ProxyOptions, 'listen' | 'logger' | 'meterProvider' | 'stats'>;

/** A proxy that is serving. */
export interface RunningProxy {
  readonly address: AddressInfo;
  /** Counters per route and endpoint, kept across reloads. */
  readonly stats: ProxyStats;
  /** The balancers of the configuration in force, by upstream name. */
  readonly upstreams: ReadonlyMap<string, BalanceService>;
  /** Shutting down: GOAWAY sent, calls finishing. */
  readonly draining: boolean;
  /** Client connections open now. */
  readonly clientConnections: number;
  /**
   * Puts a new configuration in force without dropping a connection or a call: the new pipeline
   * (routes, upstreams, balancers, limits) takes every call from now on; calls in flight finish
   * on the old one (within `graceMs`, default 10 s), whose upstream connections then close.
   * Rejects, leaving the old configuration in force, when the new one cannot be built.
   */
  reload(options: ReloadOptions, graceMs?: number): Promise<void>;
  /**
   * Graceful shutdown: GOAWAY to clients, calls in flight finish within `graceMs` (default 10 s),
   * then upstream connections close.
   */
  close(graceMs?: number): Promise<void>;
}

/** Starts a proxy: builds the pipeline, then listens. */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const logger = options.logger ?? pino({ enabled: false });
  const listen = typeof options.listen === 'string' ? { address: options.listen } : options.listen;
  const stats = options.stats ?? new ProxyStats();
  const build = (next: ReloadOptions) =>
    buildPipeline(next, listen, { logger, stats, meterProvider: options.meterProvider });
  let current = await build(options);
  const listener = new ProxyListener(current.service, listen, logger);
  let address: AddressInfo;
  try {
    address = await listener.listen();
  } catch (error) {
    await current.service.close();
    throw error;
  }
  logger.info(
    {
      address: `${address.address}:${address.port}`,
      upstreams: [...current.upstreams].map(
        ([name, upstream]) => `${name} (${upstream.balancerName})`,
      ),
      routes: current.routes,
    },
    'listening',
  );
  let closing: Promise<void> | undefined;
  let reloading = Promise.resolve();
  return {
    address,
    stats,
    get upstreams() {
      return current.upstreams;
    },
    get draining() {
      return closing !== undefined;
    },
    get clientConnections() {
      return listener.connectionCount;
    },
    reload(next, graceMs = 10_000) {
      // One at a time, in order: the last one asked for is the one in force.
      const done = reloading.then(async () => {
        if (closing) throw new Error('the proxy is shutting down');
        const fresh = await build(next);
        const old = current;
        current = fresh;
        listener.use(fresh.service);
        // Calls in flight (and their retries) finish on the pipeline they started on.
        void old.drained(graceMs).then(() => old.service.close());
      });
      reloading = done.catch(() => {});
      return done;
    },
    close(graceMs = 10_000) {
      closing ??= (async () => {
        await listener.close(graceMs);
        await current.service.close();
      })();
      return closing;
    },
  };
}

/** A pipeline in force, which counts its calls so that a reload can wait for them. */
interface BuiltPipeline extends Pipeline {
  readonly routes: number;
  /** Resolves once no call is in flight on this pipeline, or after `graceMs`. */
  drained(graceMs: number): Promise<void>;
}

async function buildPipeline(
  options: ReloadOptions,
  listen: ListenerOptions,
  shared: { logger: Logger; stats: ProxyStats; meterProvider: MeterProvider | undefined },
): Promise<BuiltPipeline> {
  const { logger } = shared;
  const upstreams = new Map<string, UpstreamOptions>([['default', await upstreamOptions(options)]]);
  for (const [name, upstream] of Object.entries(options.upstreams ?? {})) {
    upstreams.set(name, await upstreamOptions(upstream));
  }
  const routes = (options.routes ?? [{ methods: ['**'] }]).map((route, index) =>
    resolveRoute(route, index, upstreams, options.maxRequestMessageBytes),
  );
  const identity =
    options.identity === false
      ? undefined
      : (options.identity ?? (listen.tls?.requestCert ? {} : undefined));
  // grpc-js comes with the health checks: a proxy that does not check health does not load it.
  const healthChecks = [...upstreams.values()].some((upstream) => upstream.healthCheck)
    ? (await import('./health-check.js')).activeHealthCheck
    : undefined;
  const calls = new PipelineCalls();
  const pipeline = proxyPipeline({
    upstreams,
    routes,
    identity,
    healthChecks,
    logger,
    stats: shared.stats,
    meterProvider: shared.meterProvider,
    accessLog: options.accessLog,
    maxConcurrentCalls: options.maxConcurrentCalls,
    calls,
  });
  return {
    service: pipeline.service,
    upstreams: pipeline.upstreams,
    routes: routes.length,
    drained: (graceMs) => calls.drained(graceMs),
  };
}

async function upstreamOptions(upstream: UpstreamDefinition): Promise<UpstreamOptions> {
  return {
    discovery: upstream.discovery,
    balancer:
      typeof upstream.balancer === 'object'
        ? upstream.balancer
        : createBalancer(upstream.balancer ?? 'p2c-ewma'),
    admission: upstream.admission ?? {},
    outlier: upstream.outlier ?? {},
    pool: upstream.upstream ?? {},
    healthCheck:
      upstream.healthCheck &&
      (await withUpstreamCredentials(upstream.healthCheck, upstream.upstream)),
  };
}

/** A route definition checked against the upstreams, with the proxy's retry defaults. */
function resolveRoute(
  definition: RouteDefinition,
  index: number,
  upstreams: ReadonlyMap<string, UpstreamOptions>,
  maxRequestMessageBytes: number | undefined,
): Route {
  const name = definition.name ?? `routes[${index}]`;
  const upstream = definition.upstream ?? 'default';
  if (!upstreams.has(upstream)) throw new TypeError(`${name}: no upstream named ${upstream}`);
  const idempotent = definition.idempotent ?? false;
  const { retry, hedging } = definition;
  if ((retry || hedging) && !idempotent) {
    throw new TypeError(`${name}: retry and hedging need idempotent: true`);
  }
  const { authorization } = definition;
  return {
    name,
    methods: definition.methods,
    upstream,
    timeoutMs: definition.timeoutMs,
    idempotent,
    retry: {
      retry: retry !== undefined,
      // Without a retry policy: the transparent replays the proxy always made, at most two.
      retryMaxAttempts: retry?.maxAttempts ?? 2,
      retryableStatuses: retry?.codes,
      retryBaseDelayMs: retry?.baseDelayMs ?? 25,
      retryMaxDelayMs: retry?.maxDelayMs ?? 250,
      retryBufferLimitBytes: retry?.bufferLimitBytes,
      hedgingMaxAttempts: hedging?.maxAttempts,
      hedgingDelayMs: hedging?.delayMs,
    },
    retryBudget: definition.retryBudget,
    authorization:
      authorization === undefined || authorization instanceof CompiledPolicy
        ? authorization
        : compileAuthorizationPolicy(authorization, `${name}.authorization`),
    maxConcurrentCalls: definition.maxConcurrentCalls,
    maxRequestMessageBytes: definition.maxRequestMessageBytes ?? maxRequestMessageBytes,
  };
}

/** Health checks reach upstreams the way calls do: over TLS when the upstream uses TLS. */
async function withUpstreamCredentials(
  healthCheck: HealthCheckOptions,
  upstream: ConnectionPoolOptions = {},
): Promise<HealthCheckOptions> {
  const tls = upstream.tls;
  if (healthCheck.credentials || !tls) return healthCheck;
  const { ChannelCredentials } = await import('nice-grpc');
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
