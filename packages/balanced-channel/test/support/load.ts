import { TestServiceDefinition } from '@switchyard/testing';
import { createClient } from 'nice-grpc';
import { eventually } from '../../../discovery/test/support/updates.js';
import type { BalancedChannel } from '../../src/index.js';

export { eventually };

/** What a run of calls saw: answers per backend name, in order, and the failures. */
export interface CallLog {
  backends: string[];
  failures: string[];
  /** Calls per backend name. */
  counts(): Record<string, number>;
  /** Each backend's share of the answered calls, in percent. */
  shares(): Record<string, number>;
}

function callLog(): CallLog {
  const backends: string[] = [];
  const failures: string[] = [];
  const counts = () => {
    const result: Record<string, number> = {};
    for (const backend of backends) result[backend] = (result[backend] ?? 0) + 1;
    return result;
  };
  return {
    backends,
    failures,
    counts,
    shares: () =>
      Object.fromEntries(
        Object.entries(counts()).map(([backend, n]) => [backend, (n / backends.length) * 100]),
      ),
  };
}

/**
 * Makes `calls` unary calls, `concurrency` at a time, on a TestService client of `channel`;
 * each waits `delayMs` on its server, and is cancelled after `cancelAfterMs` if given.
 */
export async function callMany(
  channel: BalancedChannel,
  {
    calls,
    concurrency = 8,
    delayMs = 0,
    cancelAfterMs,
  }: { calls: number; concurrency?: number; delayMs?: number; cancelAfterMs?: number },
): Promise<CallLog> {
  const client = createClient(TestServiceDefinition, channel);
  const log = callLog();
  let left = calls;
  const worker = async () => {
    while (left-- > 0) {
      try {
        const signal = cancelAfterMs === undefined ? undefined : AbortSignal.timeout(cancelAfterMs);
        log.backends.push((await client.unary({ payload: 'x', delayMs }, { signal })).backend);
      } catch (error) {
        log.failures.push((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return log;
}

/**
 * Keeps `concurrency` calls in flight until `stop()`, which resolves once the last one ended;
 * each call waits `delayMs` on its server, so that changes land on calls in flight.
 */
export function keepCalling(
  channel: BalancedChannel,
  { concurrency = 8, delayMs = 5 }: { concurrency?: number; delayMs?: number } = {},
) {
  const client = createClient(TestServiceDefinition, channel);
  const log = callLog();
  let stopped = false;
  const worker = async () => {
    while (!stopped) {
      try {
        log.backends.push((await client.unary({ payload: 'x', delayMs })).backend);
      } catch (error) {
        log.failures.push((error as Error).message);
      }
    }
  };
  const running = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    log,
    /** Resolves once `backend` has answered `n` more calls than it had when asked. */
    async answeredBy(backend: string, n = 1, timeoutMs = 5_000) {
      const had = log.backends.filter((b) => b === backend).length;
      await eventually(
        () => log.backends.filter((b) => b === backend).length >= had + n,
        timeoutMs,
        `${n} calls answered by ${backend}`,
      );
    },
    async stop(): Promise<CallLog> {
      stopped = true;
      await running;
      return log;
    },
  };
}

/**
 * Resolves once the channel lists exactly `addresses` (any order), all connected. A grpc-js
 * channel resolves on its first call or when asked to connect, as this does.
 */
export async function connectedTo(
  channel: BalancedChannel,
  addresses: readonly string[],
  timeoutMs = 5_000,
): Promise<void> {
  const want = [...addresses].sort().join(' ');
  channel.getConnectivityState(true);
  await eventually(
    () => {
      const endpoints = channel.endpoints();
      return (
        endpoints.every((endpoint) => endpoint.connectivity === 'READY') &&
        endpoints
          .map((endpoint) => endpoint.address)
          .sort()
          .join(' ') === want
      );
    },
    timeoutMs,
    `channel connected to exactly ${want} (has ${JSON.stringify(channel.endpoints())})`,
  );
}
