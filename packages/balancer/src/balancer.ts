import { type Balanceable, type Clock, type Load, PendingRequests, type Random } from './load.js';
import { PeakEwma, type PeakEwmaOptions } from './peak-ewma.js';

/**
 * Chooses the endpoint for each call. The caller passes only endpoints that are ready
 * (connected, not ejected, not breaker-open) — a balancer never needs to know why one is missing,
 * as in tower, where P2C picks among ready services.
 */
export interface Balancer {
  /** Name used in configuration and logs, e.g. `p2c-ewma`. */
  readonly name: string;
  /** A fresh load record for a newly discovered endpoint. */
  newLoad(): Load;
  /** Picks one of `ready`; `undefined` only when `ready` is empty. */
  pick<T extends Balanceable>(ready: readonly T[]): T | undefined;
}

/** Options shared by the built-in balancers. */
export interface BalancerOptions extends PeakEwmaOptions {
  /** Default `Math.random`. */
  random?: Random;
  /** Default `performance.now`. */
  now?: Clock;
}

/**
 * Power of two choices: two distinct random candidates, the cheaper one wins (Mitzenmacher).
 * Near-best choices at O(1) cost, without the herding of "always the least loaded".
 */
export function pickTwoChoices<T extends Balanceable>(
  ready: readonly T[],
  random: Random,
): T | undefined {
  const n = ready.length;
  if (n < 2) return ready[0];
  const i = Math.floor(random() * n);
  let j = Math.floor(random() * (n - 1));
  if (j >= i) j++;
  const a = ready[i] as T;
  const b = ready[j] as T;
  return b.load.cost() < a.load.cost() ? b : a;
}

/** P2C over peak-EWMA latency × pending calls: the default, steers away from slow endpoints. */
export function p2cPeakEwma({ random = Math.random, ...ewma }: BalancerOptions = {}): Balancer {
  return {
    name: 'p2c-ewma',
    newLoad: () => new PeakEwma(ewma),
    pick: (ready) => pickTwoChoices(ready, random),
  };
}

/** P2C over pending calls (Envoy's and grpc-go's least-request). */
export function p2cLeastRequest({ random = Math.random, now }: BalancerOptions = {}): Balancer {
  return {
    name: 'p2c-least-request',
    newLoad: () => new PendingRequests(now),
    pick: (ready) => pickTwoChoices(ready, random),
  };
}

/** Each ready endpoint in turn; load is still counted, for observability. */
export function roundRobin({ now }: BalancerOptions = {}): Balancer {
  let next = 0;
  return {
    name: 'round-robin',
    newLoad: () => new PendingRequests(now),
    pick(ready) {
      if (ready.length === 0) return undefined;
      if (next >= ready.length) next = 0;
      return ready[next++];
    },
  };
}

/** Names accepted by {@link createBalancer}. */
export const BALANCER_NAMES = ['p2c-ewma', 'p2c-least-request', 'round-robin'] as const;
export type BalancerName = (typeof BALANCER_NAMES)[number];

/** Builds a built-in balancer from its configuration name. */
export function createBalancer(name: BalancerName, options: BalancerOptions = {}): Balancer {
  switch (name) {
    case 'p2c-ewma':
      return p2cPeakEwma(options);
    case 'p2c-least-request':
      return p2cLeastRequest(options);
    case 'round-robin':
      return roundRobin(options);
  }
}
