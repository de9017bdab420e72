import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PeakEwma } from '@switchyard/balancer';
import type { AdminMetrics } from './admin-metrics.js';
import { parseListenAddress } from './listener.js';
import type { RunningProxy } from './proxy.js';
import type { CallStatsSnapshot } from './stats.js';

/**
 * Where the admin listener binds when enabled without an address: loopback only, so that the
 * metrics, endpoints and configuration are not public unless an operator says so.
 */
export const DEFAULT_ADMIN_ADDRESS = '127.0.0.1:9990';

/** Options of {@link startAdmin}. */
export interface AdminOptions {
  /** `host:port`; port 0 picks one. Default `127.0.0.1:9990` (loopback: nothing of it is public). */
  address?: string;
  /** `/metrics`, from {@link createAdminMetrics}; without it `/metrics` answers 404. */
  metrics?: AdminMetrics;
  /** What `/config` shows; secrets in it are redacted. Default: nothing to show. */
  config?: () => unknown;
}

/** An admin listener that is serving. */
export interface RunningAdmin {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** One endpoint on `/endpoints`. */
export interface EndpointView extends CallStatsSnapshot {
  address: string;
  /** `ready`, `ejected` (by the outlier breaker) or `not ready` (connecting, at its stream limit…). */
  state: 'ready' | 'ejected' | 'not ready';
  /** Why it is not ready; `null` when it is. */
  reason: string | null;
  /** Peak-EWMA's round-trip estimate (ms) with `p2c-ewma`; `null` with other balancers. */
  ewmaMs: number | null;
  /** Calls sent and not yet answered (the balancer's load). */
  pending: number;
  ejections: number;
  connections: number;
}

/**
 * The proxy's own HTTP/1.1 listener for operators, apart from the data plane (Linkerd's admin
 * port, Envoy's admin): `/live`, `/ready`, `/metrics`, `/endpoints`, `/routes`, `/config`. Plain
 * `node:http`: it costs nothing per proxied call, and a scrape reads counters the data plane keeps
 * anyway.
 */
export async function startAdmin(
  proxy: RunningProxy,
  { address = DEFAULT_ADMIN_ADDRESS, metrics, config }: AdminOptions = {},
): Promise<RunningAdmin> {
  const routes: Record<string, (request: IncomingMessage, response: ServerResponse) => void> = {
    '/live': (_, response) => text(response, 200, 'live\n'),
    '/ready': (_, response) => {
      const reason = notReady(proxy);
      text(
        response,
        reason === undefined ? 200 : 503,
        reason ? `not ready: ${reason}\n` : 'ready\n',
      );
    },
    '/endpoints': (_, response) => json(response, endpointsView(proxy)),
    '/routes': (_, response) => json(response, routesView(proxy)),
    '/config': (_, response) => json(response, redact(config?.() ?? {})),
    ...(metrics ? { '/metrics': (request, response) => metrics.handle(request, response) } : {}),
  };
  // node:http only once an admin listener starts: ≈5 MB a proxy without one does not carry.
  const { createServer } = await import('node:http');
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://admin').pathname;
    const route = routes[path];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      text(response, 405, 'GET only\n');
    } else if (route === undefined) {
      text(response, 404, `not found; try ${Object.keys(routes).join(' ')}\n`);
    } else {
      route(request, response);
    }
  });
  const { host, port } = parseListenAddress(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Why the proxy should take no traffic now (Kubernetes readiness), or `undefined`. */
function notReady(proxy: RunningProxy): string | undefined {
  if (proxy.draining) return 'draining';
  for (const [name, upstream] of proxy.upstreams) {
    if (upstream.endpoints().length === 0) return `upstream ${name}: discovery lists no endpoints`;
  }
  return undefined;
}

/** `/endpoints`: every upstream's endpoints, their state and counters. */
export function endpointsView(proxy: RunningProxy) {
  return {
    ready: notReady(proxy) === undefined,
    draining: proxy.draining,
    clientConnections: proxy.clientConnections,
    upstreams: [...proxy.upstreams].map(([name, upstream]) => ({
      name,
      balancer: upstream.balancerName,
      endpoints: upstream.endpoints().map(({ address, service, load, stats }): EndpointView => {
        const ready = service.isReady();
        return {
          address,
          state: ready ? 'ready' : stats.ejected ? 'ejected' : 'not ready',
          reason: ready ? null : service.notReadyReason(),
          ewmaMs: 'rttMs' in load ? round((load as PeakEwma).rttMs) : null,
          pending: load.pending,
          ejections: stats.ejections,
          connections: stats.connections(),
          ...stats.snapshot(),
        };
      }),
    })),
  };
}

/** `/routes`: every route's counters. */
export function routesView(proxy: RunningProxy) {
  return {
    routes: [...proxy.stats.routes()].map(([name, stats]) => ({ name, ...stats.snapshot() })),
  };
}

/** Keys whose values are never shown (TLS keys, tokens, passwords) even as file names. */
const SECRET = /key|secret|token|password|credential/i;

/** A copy of `value` fit to show: secrets and binary contents (PEM bytes) replaced. */
export function redact(value: unknown): unknown {
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return '[redacted]';
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [
      key,
      SECRET.test(key) && inner !== undefined && typeof inner !== 'object'
        ? '[redacted]'
        : redact(inner),
    ]),
  );
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function text(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
}

function json(response: ServerResponse, body: unknown): void {
  response
    .writeHead(200, { 'content-type': 'application/json' })
    .end(`${JSON.stringify(body, null, 2)}\n`);
}

/**
 * The admin's `/metrics` and the meter provider the pipeline's metrics layers must use, loaded
 * on demand: the OpenTelemetry metrics SDK is megabytes of memory a proxy without an admin
 * listener does not pay. With `sdk: true` (an SDK started from `OTEL_*` variables), its reader
 * goes to that SDK, so OTLP and `/metrics` carry the same instruments.
 */
export async function createAdminMetrics({ sdk = false }: { sdk?: boolean } = {}) {
  return (await import('./admin-metrics.js')).adminMetrics(sdk);
}
