import { isStatus, Status, statusName } from '@switchyard/core';

/**
 * Upper bounds, in ms, of the latency buckets kept per route and per endpoint: fine below 10 ms
 * where in-cluster calls land, so that `stat`'s p50 of a 0.4 ms call is not "somewhere under
 * 5 ms". The last bucket is everything above 30 s.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 25, 50, 75, 100, 250, 500, 1000, 2500, 5000,
  10_000, 30_000,
];

/** The counters of one route or endpoint, as `/endpoints` and `/routes` show them. */
export interface CallStatsSnapshot {
  /** Calls started. */
  requests: number;
  /** Calls not finished yet. */
  inFlight: number;
  /** Finished with OK; the rest are failures (as Linkerd counts a gRPC call's success). */
  successes: number;
  failures: number;
  /** successes / finished calls, or `null` before any call finished. */
  successRate: number | null;
  /** Finished calls by status name, only the codes seen. */
  statuses: Record<string, number>;
  /** Finished calls per latency bucket (not cumulative): `counts[i]` ≤ `boundsMs[i]`, the last above all. */
  latency: { boundsMs: readonly number[]; counts: number[]; sumMs: number };
}

/**
 * Plain counters of calls through one route or endpoint. A call costs two increments and a
 * bucket search; OpenTelemetry's observable instruments read them only when scraped, so the data
 * path does no metric work of its own when nobody looks.
 */
export class CallStats {
  requests = 0;
  inFlight = 0;
  /** Finished calls by status code (0–16; anything else counts as UNKNOWN). */
  readonly statuses: number[] = new Array(17).fill(0);
  /** Per-bucket counts, {@link LATENCY_BOUNDS_MS} and one for above them. */
  readonly latency: number[] = new Array(LATENCY_BOUNDS_MS.length + 1).fill(0);
  latencySumMs = 0;
  /** Told of each finished call, when metrics are exported (the duration histogram). */
  observer: ((elapsedMs: number, status: Status) => void) | undefined = undefined;

  /** A call starts; returns its start time for {@link finish}. */
  start(): number {
    this.requests++;
    this.inFlight++;
    return performance.now();
  }

  finish(startedAt: number, status: Status): void {
    const elapsedMs = performance.now() - startedAt;
    this.inFlight--;
    const code = isStatus(status) ? status : Status.UNKNOWN;
    this.statuses[code]!++;
    const bounds = LATENCY_BOUNDS_MS;
    let bucket = 0;
    while (bucket < bounds.length && elapsedMs > bounds[bucket]!) bucket++;
    this.latency[bucket]!++;
    this.latencySumMs += elapsedMs;
    this.observer?.(elapsedMs, code);
  }

  snapshot(): CallStatsSnapshot {
    const successes = this.statuses[Status.OK]!;
    const finished = this.statuses.reduce((sum, count) => sum + count, 0);
    const statuses: Record<string, number> = {};
    this.statuses.forEach((count, code) => {
      if (count > 0) statuses[statusName(code)] = count;
    });
    return {
      requests: this.requests,
      inFlight: this.inFlight,
      successes,
      failures: finished - successes,
      successRate: finished === 0 ? null : successes / finished,
      statuses,
      latency: {
        boundsMs: LATENCY_BOUNDS_MS,
        counts: [...this.latency],
        sumMs: Math.round(this.latencySumMs * 1000) / 1000,
      },
    };
  }
}

/** One endpoint's counters, plus what its breaker and pool report. */
export class EndpointStats extends CallStats {
  /** Times the outlier breaker ejected it. */
  ejections = 0;
  /** Ejected now (the breaker is open or waiting for its probe). */
  ejected = false;
  /** Open HTTP/2 connections to it; set by its pool. */
  connections: () => number = () => 0;
  /** Stacks (one per pipeline: a reload builds another) holding this record. */
  holders = 0;
}

/** Makes the observer of a new route's or endpoint's calls. */
export interface StatsObservers {
  route(name: string): CallStats['observer'];
  endpoint?(upstream: string, address: string): CallStats['observer'];
}

/**
 * The counters of a running proxy, kept across reloads: a route or endpoint that survives a new
 * configuration keeps counting where it was, so Prometheus sees no reset and `stat` no gap.
 */
export class ProxyStats {
  readonly #routes = new Map<string, CallStats>();
  readonly #endpoints = new Map<string, EndpointStats>();
  readonly #observe: StatsObservers | undefined;
  /** Every call the proxy served, whatever its route (the proxy-wide concurrency limit's count). */
  readonly inbound = new CallStats();

  /** With `observe`, each new record is handed an observer of its calls (the metrics' histograms). */
  constructor(observe?: StatsObservers) {
    this.#observe = observe;
  }

  /** The counters of the route named `name`. */
  route(name: string): CallStats {
    let stats = this.#routes.get(name);
    if (stats === undefined) {
      stats = new CallStats();
      stats.observer = this.#observe?.route(name);
      this.#routes.set(name, stats);
    }
    return stats;
  }

  /** Every route's counters, by name. */
  routes(): IterableIterator<[string, CallStats]> {
    return this.#routes.entries();
  }

  /** Routes of an older configuration that the current one no longer has stop being kept. */
  keepRoutes(names: readonly string[]): void {
    for (const name of this.#routes.keys()) if (!names.includes(name)) this.#routes.delete(name);
  }

  /** Takes the counters of `address` in `upstream`, until {@link releaseEndpoint}. */
  acquireEndpoint(upstream: string, address: string): EndpointStats {
    const key = `${upstream}\u0000${address}`;
    let stats = this.#endpoints.get(key);
    if (stats === undefined) {
      stats = new EndpointStats();
      stats.observer = this.#observe?.endpoint?.(upstream, address);
      this.#endpoints.set(key, stats);
    }
    stats.holders++;
    return stats;
  }

  /** An endpoint left a pipeline (drained, or its pipeline was replaced). */
  releaseEndpoint(upstream: string, address: string): void {
    const key = `${upstream}\u0000${address}`;
    const stats = this.#endpoints.get(key);
    if (stats !== undefined && --stats.holders <= 0) this.#endpoints.delete(key);
  }
}
