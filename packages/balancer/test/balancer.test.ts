import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Balanceable,
  createBalancer,
  type Load,
  PendingRequests,
  p2cLeastRequest,
  p2cPeakEwma,
  pickTwoChoices,
  roundRobin,
} from '../src/index.js';

function endpoints(costs: number[]): (Balanceable & { id: number })[] {
  return costs.map((c, id) => ({
    id,
    load: { pending: 0, cost: () => c, start: () => 0, settle() {}, abandon() {} } satisfies Load,
  }));
}

/** Deterministic random: replays `values` in a loop. */
function sequence(...values: number[]) {
  let i = 0;
  return () => values[i++ % values.length] as number;
}

describe('pickTwoChoices', () => {
  it('returns undefined for no endpoint and the only one for one', () => {
    expect(pickTwoChoices([], Math.random)).toBeUndefined();
    const [only] = endpoints([5]);
    expect(pickTwoChoices([only!], Math.random)).toBe(only);
  });

  it('picks two distinct candidates and keeps the cheaper', () => {
    const eps = endpoints([3, 1, 2]);
    // i = floor(0 × 3) = 0; j = floor(0 × 2) = 0 → bumped to 1: candidates 0 and 1.
    expect(pickTwoChoices(eps, sequence(0, 0))?.id).toBe(1);
    // i = 2; j = floor(0.99 × 2) = 1: candidates 2 and 1.
    expect(pickTwoChoices(eps, sequence(0.99, 0.99))?.id).toBe(1);
    // i = 0; j = 1 → 2: candidates 0 and 2.
    expect(pickTwoChoices(eps, sequence(0, 0.6))?.id).toBe(2);
  });

  it('never picks the most expensive of three', () => {
    const eps = endpoints([1, 2, 9]);
    for (let k = 0; k < 1000; k++) expect(pickTwoChoices(eps, Math.random)?.id).not.toBe(2);
  });
});

describe('roundRobin', () => {
  it('visits each ready endpoint in turn, following changes of the ready set', () => {
    const balancer = roundRobin();
    const eps = endpoints([0, 0, 0]);
    const picked = Array.from({ length: 6 }, () => balancer.pick(eps)?.id);
    expect(picked).toEqual([0, 1, 2, 0, 1, 2]);
    expect(balancer.pick(eps.slice(0, 2))?.id).toBe(0);
    expect(balancer.pick([])).toBeUndefined();
  });
});

describe('p2cLeastRequest', () => {
  it('counts pending calls until they settle', () => {
    const balancer = p2cLeastRequest();
    const load = balancer.newLoad();
    expect(load).toBeInstanceOf(PendingRequests);
    const at = load.start();
    load.start();
    expect(load.cost()).toBe(2);
    load.settle(at);
    expect(load.cost()).toBe(1);
  });

  it('sends new calls to the endpoint with fewer pending', () => {
    const balancer = p2cLeastRequest({ random: sequence(0, 0) });
    const a = { load: balancer.newLoad() };
    const b = { load: balancer.newLoad() };
    a.load.start();
    expect(balancer.pick([a, b])).toBe(b);
  });
});

describe('p2cPeakEwma', () => {
  // Simulates 3 endpoints answering in 1 ms, 1 ms and 51 ms with up to 8 calls in flight,
  // on a virtual clock: the slow one must get a small share once its first answer is seen.
  it('steers calls away from a slow endpoint', () => {
    const clock = { t: 0 };
    const balancer = p2cPeakEwma({ now: () => clock.t });
    const latency = [1, 1, 51];
    const eps = latency.map((ms, id) => ({ id, ms, load: balancer.newLoad() }));
    const inflight: { at: number; ep: (typeof eps)[number]; startedAt: number }[] = [];
    const counts = [0, 0, 0];
    for (let call = 0; call < 3000; call++) {
      while (inflight.length >= 8) {
        inflight.sort((x, y) => x.at - y.at);
        const done = inflight.shift()!;
        clock.t = Math.max(clock.t, done.at);
        done.ep.load.settle(done.startedAt);
      }
      const ep = balancer.pick(eps)!;
      counts[ep.id]!++;
      inflight.push({ at: clock.t + ep.ms, ep, startedAt: ep.load.start() });
    }
    expect(counts[2]! / 3000).toBeLessThan(0.02);
    expect(counts[0]).toBeGreaterThan(1000);
    expect(counts[1]).toBeGreaterThan(1000);
  });
});

describe('createBalancer', () => {
  it('builds each balancer by its configuration name', () => {
    for (const name of ['p2c-ewma', 'p2c-least-request', 'round-robin'] as const) {
      expect(createBalancer(name).name).toBe(name);
    }
  });
});

describe('pickTwoChoices (properties)', () => {
  it('returns a member of the ready set, never the strictly most expensive one', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 2, maxLength: 20 }),
        fc.double({ min: 0, max: 0.999_999, noNaN: true }),
        fc.double({ min: 0, max: 0.999_999, noNaN: true }),
        (costs, r1, r2) => {
          const eps = endpoints(costs);
          const picked = pickTwoChoices(eps, sequence(r1, r2))!;
          expect(eps).toContain(picked);
          const max = Math.max(...costs);
          if (costs.filter((c) => c === max).length === 1) expect(costs[picked.id]).not.toBe(max);
        },
      ),
    );
  });
});
