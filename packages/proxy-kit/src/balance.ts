import type { Balanceable, Balancer, Load } from '@switchyard/balancer';
import type { Call, Outcome } from '@switchyard/core';
import type { Discovery, DiscoveryUpdate, Endpoint } from '@switchyard/discovery';
import type { Logger } from 'pino';
import type { ProxyCall } from './proxy-call.js';
import type { Service } from './service.js';
import type { EndpointStats } from './stats.js';
import type { UpstreamCall } from './upstream-call.js';

/** What the endpoint stack of one endpoint is built from. */
export interface EndpointTarget {
  readonly endpoint: Endpoint;
  /** Connections to the endpoint fail: asks discovery to re-resolve. */
  connectionFailed(reason: string): void;
  /** The endpoint's counters, which its breaker and pool add to. */
  readonly stats: EndpointStats;
}

/** Where the counters of each endpoint come from and go back to when it leaves. */
export interface EndpointStatsSource {
  acquire(address: string): EndpointStats;
  release(address: string): void;
}

/** One balanced endpoint, as the admin API shows it. */
export interface BalancedEndpointView {
  readonly address: string;
  readonly service: Service;
  readonly load: Load;
  readonly stats: EndpointStats;
}

/** Builds the per-endpoint service (breaker, connection pool, …) for a discovered endpoint. */
export type EndpointStack = (target: EndpointTarget) => Service;

/** One endpoint as the balancer sees it: its service and its load record. */
class BalancedEndpoint implements Balanceable, BalancedEndpointView {
  constructor(
    readonly address: string,
    readonly service: Service,
    readonly load: Load,
    readonly stats: EndpointStats,
  ) {}

  /**
   * Sends one call here. The load record learns when its response began (peak-EWMA's sample,
   * as Linkerd takes it at the response headers), or that it ended without one.
   */
  call(call: Call): Promise<Outcome> {
    const { load, stats } = this;
    const startedAt = load.start();
    const statsStartedAt = stats.start();
    let settled = false;
    const onResponse = () => {
      if (settled) return;
      settled = true;
      load.settle(startedAt);
    };
    const attempt: UpstreamCall = { ...call, endpoint: this.address, onResponse };
    return this.service.call(attempt).then((outcome) => {
      onResponse();
      stats.finish(statsStartedAt, outcome.status);
      return outcome;
    });
  }
}

/**
 * A service over the discovered endpoints: each call goes to the endpoint the balancer picks
 * among the ready ones. Endpoints that discovery drops leave the balancer at once and are closed
 * gracefully — calls in flight finish on their connections, which close when idle.
 */
class Balance implements BalanceService {
  readonly #balancer: Balancer;
  readonly #discovery: Discovery;
  readonly #endpointStack: EndpointStack;
  readonly #stats: EndpointStatsSource;
  readonly #logger: Logger;
  readonly #endpoints = new Map<string, BalancedEndpoint>();
  #list: BalancedEndpoint[] = [];
  // Reused by every pick: the ready subset, rebuilt per call without allocating.
  readonly #ready: BalancedEndpoint[] = [];
  readonly #listeners: (() => void)[] = [];
  readonly #unsubscribe: () => void;
  readonly #draining = new Set<Promise<void>>();
  readonly #notify = () => {
    for (const listener of this.#listeners) listener();
  };

  constructor(
    balancer: Balancer,
    discovery: Discovery,
    stack: EndpointStack,
    logger: Logger,
    stats: EndpointStatsSource,
  ) {
    this.#balancer = balancer;
    this.#discovery = discovery;
    this.#endpointStack = stack;
    this.#stats = stats;
    this.#logger = logger;
    this.#unsubscribe = discovery.subscribe((update) => this.#update(update));
  }

  isReady(): boolean {
    const list = this.#list;
    for (let i = 0; i < list.length; i++) if (list[i]!.service.isReady()) return true;
    return false;
  }

  call(call: Call): Promise<Outcome> {
    const list = this.#list;
    const ready = this.#ready;
    ready.length = 0;
    for (let i = 0; i < list.length; i++) {
      if (list[i]!.service.isReady()) ready.push(list[i]!);
    }
    // A retry or hedge goes to an endpoint the call has not tried, while there is one (Envoy's
    // previous_hosts predicate): the endpoint that just failed it is the likeliest to again.
    if (call.attempt > 1 && ready.length > 1)
      avoidTried(ready, (call.transport as ProxyCall).triedEndpoints);
    const endpoint = this.#balancer.pick(ready)!;
    ready.length = 0;
    return endpoint.call(call);
  }

  onReady(listener: () => void): void {
    this.#listeners.push(listener);
  }

  get balancerName(): string {
    return this.#balancer.name;
  }

  endpoints(): readonly BalancedEndpointView[] {
    return this.#list;
  }

  notReadyReason(): string {
    if (this.#list.length === 0) return 'discovery lists no endpoints';
    return this.#list.map((e) => `${e.address}: ${e.service.notReadyReason()}`).join('; ');
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    const closing = this.#list.map((e) =>
      e.service.close().then(() => this.#stats.release(e.address)),
    );
    this.#list = [];
    this.#endpoints.clear();
    await Promise.all([...closing, ...this.#draining]);
  }

  #update({ endpoints }: DiscoveryUpdate): void {
    const current = new Map(endpoints.map((e) => [e.address, e]));
    for (const [address, endpoint] of this.#endpoints) {
      if (current.has(address)) continue;
      this.#endpoints.delete(address);
      this.#logger.info({ endpoint: address }, 'endpoint removed; draining');
      const drained = endpoint.service.close().then(() => {
        this.#draining.delete(drained);
        this.#stats.release(address);
        this.#logger.info({ endpoint: address }, 'endpoint drained');
      });
      this.#draining.add(drained);
    }
    for (const [address, endpoint] of current) {
      if (this.#endpoints.has(address)) continue;
      const stats = this.#stats.acquire(address);
      const service = this.#endpointStack({
        endpoint,
        connectionFailed: (reason) => this.#discovery.refresh(`${address}: ${reason}`),
        stats,
      });
      service.onReady(this.#notify);
      this.#endpoints.set(
        address,
        new BalancedEndpoint(address, service, this.#balancer.newLoad(), stats),
      );
      this.#logger.info({ endpoint: address }, 'endpoint added');
    }
    this.#list = [...this.#endpoints.values()];
  }
}

/** Removes the endpoints in `tried` from `ready`, unless that would leave none. */
function avoidTried(ready: BalancedEndpoint[], tried: readonly string[]): void {
  let kept = 0;
  for (let i = 0; i < ready.length; i++) {
    if (!tried.includes(ready[i]!.address)) ready[kept++] = ready[i]!;
  }
  if (kept > 0) ready.length = kept;
}

/** The balancer over an upstream's endpoints, which the admin API can list. */
export interface BalanceService extends Service {
  /** The balancer's name (`p2c-ewma`…). */
  readonly balancerName: string;
  /** The endpoints discovery lists now, in its order. */
  endpoints(): readonly BalancedEndpointView[];
}

/** The balancing service over a live set of endpoints, each built by `stack`. */
export function balance(
  balancer: Balancer,
  discovery: Discovery,
  stack: EndpointStack,
  logger: Logger,
  stats: EndpointStatsSource,
): BalanceService {
  return new Balance(balancer, discovery, stack, logger, stats);
}
