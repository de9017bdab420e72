import { performance } from 'node:perf_hooks';
import { type LatencySummary, summariseLatencies } from '../stats.js';

export interface ClosedLoopResult extends LatencySummary {
  /** Response messages received per second (calls per second, for unary). */
  rate: number;
  /** Response messages received. */
  messages: number;
  /** Calls that failed. */
  errors: number;
}

/**
 * Keeps `concurrency` calls in flight for `durationMs`: each of `concurrency` workers starts its
 * next call as soon as its previous one ends, until the window closes. Unary calls running then
 * are awaited and count, over the time they took; `signal` aborts at the close so that streams
 * still running stop rather than being waited for (their failures are not errors).
 */
export async function closedLoop(
  call: (onMessage: () => void, signal: AbortSignal) => Promise<void>,
  concurrency: number,
  durationMs: number,
): Promise<ClosedLoopResult> {
  const latencies: number[] = [];
  let messages = 0;
  let errors = 0;
  const windowClose = new AbortController();
  // A window with nothing in it measures nothing (long streams starting on a starved machine):
  // it closes after `durationMs`, but not before the first response or failure.
  let timeIsUp = false;
  const closeIfDue = () => {
    if (timeIsUp && messages + errors > 0) windowClose.abort();
  };
  const timer = setTimeout(() => {
    timeIsUp = true;
    closeIfDue();
  }, durationMs);
  const onMessage = () => {
    messages += 1;
    closeIfDue();
  };
  const worker = async () => {
    while (!windowClose.signal.aborted) {
      const begin = performance.now();
      try {
        await call(onMessage, windowClose.signal);
        latencies.push(performance.now() - begin);
      } catch {
        if (!windowClose.signal.aborted) errors += 1;
        closeIfDue();
      }
    }
  };
  const started = performance.now();
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    clearTimeout(timer);
  }
  const elapsedS = (performance.now() - started) / 1000;
  return { rate: messages / elapsedS, messages, errors, ...summariseLatencies(latencies) };
}
