import {
  type RetryAttemptEvent,
  retryAttemptChannel,
  retryBudgetExhaustedChannel,
} from '@switchyard/core';
import type { CallScope } from '@switchyard/nice-grpc';
import { type ClientError, Metadata, type Status } from 'nice-grpc-common';
import type { RetryEvent } from './options.js';

/**
 * The request metadata of attempt `attempt` (1-based): the caller's, plus gRFC A6's
 * `grpc-previous-rpc-attempts` on every attempt after the first, so servers and proxies can tell
 * retries apart.
 */
export function attemptMetadata(metadata: Metadata | undefined, attempt: number): Metadata {
  const copy = Metadata(metadata);
  copy.set('grpc-previous-rpc-attempts', String(attempt - 1));
  return copy;
}

/**
 * When a call starts, as {@link callDeadline} needs it: the clock is read only for a relative
 * `deadline` option (milliseconds from the start), so other calls skip it.
 */
export function callStart(option: Date | number | undefined): number {
  return typeof option === 'number' ? Date.now() : 0;
}

/**
 * The call's deadline in epoch milliseconds: the earlier of the `deadline` call option
 * (a `Date`, or milliseconds from `startedAt`) and the deadline of the inbound call being served.
 */
export function callDeadline(
  option: Date | number | undefined,
  startedAt: number,
  scope: CallScope | undefined,
): number | undefined {
  const fromOption =
    option === undefined
      ? undefined
      : option instanceof Date
        ? option.getTime()
        : startedAt + option;
  const fromScope = scope?.deadline?.getTime();
  if (fromOption === undefined) return fromScope;
  return fromScope === undefined ? fromOption : Math.min(fromOption, fromScope);
}

/** Tells the `onRetry` hook and the diagnostics channel that an attempt is about to start. */
export function announceAttempt(
  onRetry: ((event: RetryEvent) => void) | undefined,
  method: string,
  attempt: number,
  delayMs: number,
  kind: RetryAttemptEvent['kind'],
  error: ClientError | undefined,
): void {
  if (onRetry === undefined && !retryAttemptChannel.hasSubscribers) return;
  const event: RetryEvent = { method, attempt, delayMs, kind, code: error?.code, error };
  onRetry?.(event);
  retryAttemptChannel.publish(event);
}

/** Counts a retry or hedge that the budget refused. */
export function announceBudgetExhausted(method: string, code: Status): void {
  if (retryBudgetExhaustedChannel.hasSubscribers) {
    retryBudgetExhaustedChannel.publish({ method, code });
  }
}
