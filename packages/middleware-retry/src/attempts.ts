import {
  type Call,
  type Headers,
  type Outcome,
  type RetryAttemptEvent,
  retryAttemptChannel,
  retryBudgetExhaustedChannel,
  type Status,
} from '@switchyard/core';
import type { RetryEvent } from './options.js';

/**
 * The request headers of attempt `attempt` (1-based): a copy of the call's, plus gRFC A6's
 * `grpc-previous-rpc-attempts` on every attempt after the first, so servers and proxies can tell
 * retries apart.
 */
export function attemptHeaders(headers: Headers, attempt: number): Headers {
  const copy = headers.clone();
  copy.set('grpc-previous-rpc-attempts', String(attempt - 1));
  return copy;
}

/**
 * The call's deadline in epoch milliseconds: the earlier of its own and the deadline of the
 * inbound call it is made for.
 */
export function callDeadline(call: Call): number | undefined {
  const own = call.deadline;
  const inherited = call.inbound?.deadline;
  if (own === undefined) return inherited;
  return inherited === undefined ? own : Math.min(own, inherited);
}

/** Tells the `onRetry` hook and the diagnostics channel that an attempt is about to start. */
export function announceAttempt(
  onRetry: ((event: RetryEvent) => void) | undefined,
  method: string,
  attempt: number,
  delayMs: number,
  kind: RetryAttemptEvent['kind'],
  failed: Outcome | undefined,
): void {
  if (onRetry === undefined && !retryAttemptChannel.hasSubscribers) return;
  const event: RetryEvent = {
    method,
    attempt,
    delayMs,
    kind,
    code: failed?.status,
    error: failed?.error,
  } as RetryEvent;
  onRetry?.(event);
  retryAttemptChannel.publish(event);
}

/** Counts a retry or hedge that the budget refused. */
export function announceBudgetExhausted(method: string, code: Status): void {
  if (retryBudgetExhaustedChannel.hasSubscribers) {
    retryBudgetExhaustedChannel.publish({ method, code });
  }
}
