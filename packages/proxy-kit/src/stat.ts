import { parseArgs } from 'node:util';
import type { EndpointView } from './admin.js';
import { DEFAULT_ADMIN_ADDRESS } from './admin.js';
import type { CallStatsSnapshot } from './stats.js';

const USAGE = `Usage: proxy-kit stat [--admin host:port] [--once] [--json] [--window <seconds>]

Per route and per endpoint: requests per second, success rate, p50 and p99 latency over the
last window (default 2 s), read from a running proxy's admin listener (default ${DEFAULT_ADMIN_ADDRESS}).
  --once     one table, then exit (for scripts)
  --json     the same as JSON
`;

/** One row of `stat`: a route or an endpoint over the window. */
export interface StatRow {
  /** Calls finished per second. */
  rps: number;
  /** Share of them that ended OK; `null` when none finished. */
  successRate: number | null;
  /** Latency quantiles (ms) estimated from the histogram, as Prometheus's histogram_quantile. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Calls finished in the window. */
  calls: number;
}

/** What `stat --json` prints. */
export interface StatReport {
  windowSeconds: number;
  routes: (StatRow & { name: string })[];
  endpoints: (StatRow & {
    upstream: string;
    address: string;
    state: string;
    /** The endpoint's share of its upstream's calls in the window. */
    share: number | null;
    ewmaMs: number | null;
    inFlight: number;
  })[];
}

interface Sample {
  at: number;
  routes: { routes: (CallStatsSnapshot & { name: string })[] };
  endpoints: { upstreams: { name: string; endpoints: EndpointView[] }[] };
}

/** `proxy-kit stat`: a live (or `--once`) table of a running proxy, like `linkerd viz stat`. */
export async function statCommand(argv: string[]): Promise<void> {
  let values: { admin?: string; once?: boolean; json?: boolean; window?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        admin: { type: 'string' },
        once: { type: 'boolean' },
        json: { type: 'boolean' },
        window: { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    return fail(`${(error as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const base = `http://${values.admin ?? DEFAULT_ADMIN_ADDRESS}`;
  const windowSeconds = values.window === undefined ? 2 : Number(values.window);
  if (!(windowSeconds > 0)) return fail(`--window: expected seconds > 0, got "${values.window}"`);
  let previous = await sample(base);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, windowSeconds * 1000));
    const current = await sample(base);
    const report = statReport(previous, current);
    const out = values.json ? `${JSON.stringify(report, null, 2)}\n` : renderTable(report);
    // Live: the screen is redrawn in place, as `top` does.
    process.stdout.write(values.once ? out : `\x1b[H\x1b[2J${out}`);
    if (values.once) return;
    previous = current;
  }
}

function fail(message: string): never {
  process.stderr.write(`proxy-kit stat: ${message}\n`);
  process.exit(2);
}

async function sample(base: string): Promise<Sample> {
  const get = async (path: string) => {
    let response: Response;
    try {
      response = await fetch(`${base}${path}`);
    } catch (error) {
      const cause = (error as { cause?: Error }).cause?.message ?? (error as Error).message;
      return fail(`cannot reach the admin listener at ${base}: ${cause}`);
    }
    if (!response.ok) return fail(`${base}${path}: HTTP ${response.status}`);
    return (await response.json()) as never;
  };
  const [routes, endpoints] = await Promise.all([get('/routes'), get('/endpoints')]);
  return { at: performance.now(), routes, endpoints };
}

/** The rates and quantiles of the window between two samples of the admin API. */
export function statReport(before: Sample, after: Sample): StatReport {
  const seconds = (after.at - before.at) / 1000;
  const earlierRoutes = new Map(before.routes.routes.map((route) => [route.name, route]));
  const routes = after.routes.routes.map((route) => ({
    name: route.name,
    ...row(earlierRoutes.get(route.name), route, seconds),
  }));
  const endpoints: StatReport['endpoints'] = [];
  for (const upstream of after.endpoints.upstreams) {
    const earlier = new Map(
      before.endpoints.upstreams
        .find((u) => u.name === upstream.name)
        ?.endpoints.map((e) => [e.address, e]) ?? [],
    );
    const rows = upstream.endpoints.map((endpoint) => ({
      endpoint,
      row: row(earlier.get(endpoint.address), endpoint, seconds),
    }));
    const total = rows.reduce((sum, { row }) => sum + row.calls, 0);
    for (const { endpoint, row: r } of rows) {
      endpoints.push({
        upstream: upstream.name,
        address: endpoint.address,
        state: endpoint.state,
        ...r,
        share: total === 0 ? null : r.calls / total,
        ewmaMs: endpoint.ewmaMs,
        inFlight: endpoint.inFlight,
      });
    }
  }
  return { windowSeconds: round(seconds, 3), routes, endpoints };
}

function row(
  before: CallStatsSnapshot | undefined,
  after: CallStatsSnapshot,
  seconds: number,
): StatRow {
  // A record that is new (or was reset by a restart) counts from zero.
  const base =
    before === undefined || before.successes + before.failures > after.successes + after.failures
      ? undefined
      : before;
  const successes = after.successes - (base?.successes ?? 0);
  const calls = successes + after.failures - (base?.failures ?? 0);
  const counts = after.latency.counts.map((count, i) => count - (base?.latency.counts[i] ?? 0));
  return {
    rps: round(calls / seconds, 1),
    successRate: calls === 0 ? null : round(successes / calls, 4),
    p50Ms: quantile(0.5, after.latency.boundsMs, counts),
    p99Ms: quantile(0.99, after.latency.boundsMs, counts),
    calls,
  };
}

/**
 * The `q` quantile of bucketed latencies, interpolated linearly within its bucket (Prometheus's
 * histogram_quantile); in the open last bucket, its lower bound.
 */
export function quantile(
  q: number,
  bounds: readonly number[],
  counts: readonly number[],
): number | null {
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total === 0) return null;
  const rank = q * total;
  let cumulative = 0;
  for (let i = 0; i < counts.length; i++) {
    const count = counts[i]!;
    if (cumulative + count >= rank && count > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1]!;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      return round(lower + (bounds[i]! - lower) * ((rank - cumulative) / count), 3);
    }
    cumulative += count;
  }
  return bounds[bounds.length - 1]!;
}

function renderTable(report: StatReport): string {
  const percent = (rate: number | null) => (rate === null ? '-' : `${(rate * 100).toFixed(2)}%`);
  const ms = (value: number | null) => (value === null ? '-' : `${value}ms`);
  const routes = table(
    ['ROUTE', 'RPS', 'SUCCESS', 'P50', 'P99'],
    report.routes.map((r) => [
      r.name,
      r.rps.toFixed(1),
      percent(r.successRate),
      ms(r.p50Ms),
      ms(r.p99Ms),
    ]),
  );
  const endpoints = table(
    ['UPSTREAM', 'ENDPOINT', 'STATE', 'RPS', 'SHARE', 'SUCCESS', 'P50', 'P99', 'EWMA', 'IN FLIGHT'],
    report.endpoints.map((e) => [
      e.upstream,
      e.address,
      e.state,
      e.rps.toFixed(1),
      percent(e.share),
      percent(e.successRate),
      ms(e.p50Ms),
      ms(e.p99Ms),
      ms(e.ewmaMs === null ? null : round(e.ewmaMs, 2)),
      String(e.inFlight),
    ]),
  );
  return `${routes}\n${endpoints}\n(last ${report.windowSeconds} s)\n`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // Names left-aligned, numbers right-aligned, as `linkerd viz stat` prints them.
  const line = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i < 3 && header[i] !== 'RPS' ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!),
      )
      .join('  ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
