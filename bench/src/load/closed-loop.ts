import { performance } from 'node:perf_hooks';
import { type LatencySummary, summariseLatencies } from '../stats.js';

export interface ClosedLoopResult extends LatencySummary {
  /** Response messages received per second within the window (calls per second for unary). */
  rate: number;
  /** Calls that failed. */
  errors: number;
}

/**
 * Keeps `concurrency` calls in flight for `durationMs`: each of `concurrency` workers starts
 * its next call as soon as its previous one ends. `call` reports each response message it
 * receives; only messages and calls completed inside the window count. At the end of the window
 * `signal` aborts, so that long calls (streams) still running stop rather than being waited
 * for; their failures then are not errors.
 */
export async function closedLoop(
  call: (onMessage: () => void, signal: AbortSignal) => Promise<void>,
  concurrency: number,
  durationMs: number,
): Promise<ClosedLoopResult> {
  const latencies: number[] = [];
  let messages = 0;
  let errors = 0;
  const end = performance.now() + durationMs;
  const windowEnd = new AbortController();
  const timer = setTimeout(() => windowEnd.abort(), durationMs);
  const onMessage = () => {
    if (performance.now() <= end) messages += 1;
  };
  const worker = async () => {
    while (!windowEnd.signal.aborted) {
      const begin = performance.now();
      try {
        await call(onMessage, windowEnd.signal);
      } catch {
        if (!windowEnd.signal.aborted) errors += 1;
        continue;
      }
      const finished = performance.now();
      if (finished <= end) latencies.push(finished - begin);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    clearTimeout(timer);
  }
  return { rate: messages / (durationMs / 1000), errors, ...summariseLatencies(latencies) };
}
