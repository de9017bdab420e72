import type { Discovery, DiscoveryUpdate } from '../../src/index.js';

/** Every update a discovery delivers, with when it came, and a way to wait for one. */
export interface UpdateLog {
  readonly updates: { addresses: string[]; at: number; update: DiscoveryUpdate }[];
  /** The latest set's addresses (sorted as delivered), or undefined before the first update. */
  latest(): string[] | undefined;
  /**
   * Resolves with the first update whose addresses match, among those delivered from index
   * `since` on (default 0: already delivered ones count too).
   */
  waitFor(
    addresses: readonly string[],
    timeoutMs?: number,
    since?: number,
  ): Promise<{ at: number }>;
  unsubscribe(): void;
}

export function logUpdates(discovery: Discovery): UpdateLog {
  const updates: UpdateLog['updates'] = [];
  const waiters = new Set<() => void>();
  const unsubscribe = discovery.subscribe((update) => {
    updates.push({
      addresses: update.endpoints.map((e) => e.address),
      at: performance.now(),
      update,
    });
    for (const wake of waiters) wake();
  });
  return {
    updates,
    latest: () => updates.at(-1)?.addresses,
    unsubscribe,
    waitFor: (addresses, timeoutMs = 5_000, since = 0) =>
      new Promise((resolve, reject) => {
        const want = JSON.stringify(addresses);
        const check = () => {
          const hit = updates.slice(since).find((u) => JSON.stringify(u.addresses) === want);
          if (!hit) return;
          cleanup();
          resolve(hit);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `no update ${want} within ${timeoutMs} ms; got ${JSON.stringify(updates.map((u) => u.addresses))}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
  };
}

/** Resolves once `predicate` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function eventually(
  predicate: () => boolean,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
