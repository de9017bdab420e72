import type { RetryAttemptEvent } from '@switchyard/core';
import { type ClientError, type MethodDescriptor, Status } from 'nice-grpc-common';
import type { RetryBudget } from './retry-budget.js';

/**
 * How a call is retried, whatever transport carries it: nice-grpc's call options
 * ({@link RetryOptions}) or a proxy route's retry policy. The first six are
 * nice-grpc-client-middleware-retry's, with the same names, defaults and meaning.
 */
export interface RetryPolicy {
  /**
   * Retry on {@link retryableStatuses}. Defaults to `true` for methods declared
   * `option idempotency_level = IDEMPOTENT` or `NO_SIDE_EFFECTS` (ts-proto passes it on),
   * `false` otherwise. Failures that prove the server never saw the call are retried either
   * way (see {@link transparentRetry}).
   */
  retry?: boolean;
  /** First backoff ceiling; the n-th retry waits a random time below `base × 2^(n-1)`. Default 1000. */
  retryBaseDelayMs?: number;
  /** Largest backoff ceiling. Default 30 000. */
  retryMaxDelayMs?: number;
  /**
   * Most retries after the first attempt (nice-grpc's meaning: `1` is one retry, two attempts in
   * all). `Infinity` is allowed: the budget, the deadline and the signal still end the call.
   * Default 1.
   */
  retryMaxAttempts?: number;
  /** Codes worth another attempt. Default `[UNKNOWN, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE]`. */
  retryableStatuses?: readonly Status[];
  /**
   * Called before each sequential retry's backoff, with the failed attempt's error (as its
   * transport raised it: nice-grpc's `ClientError`), its 0-based index and the delay — as
   * nice-grpc-client-middleware-retry calls it.
   */
  onRetryableError?(error: unknown, attempt: number, delayMs: number): void;

  /**
   * Retry, whatever the method and {@link retry}, the failures that prove the server never
   * processed the call: connection refused, REFUSED_STREAM, GOAWAY before processing.
   * Such retries still count against {@link retryMaxAttempts} and the budget. Default `true`.
   */
  transparentRetry?: boolean;
  /** The budget this call's retries and hedges draw from. Default: the middleware's own. */
  retryBudget?: RetryBudget;
  /** No attempt starts with less than this left before the deadline. Default 10. */
  retryMinAttemptTimeMs?: number;
  /**
   * Client- and bidi-streaming calls stay retryable while their request stream fits in this
   * many bytes (estimated from the decoded messages). Default 65 536.
   */
  retryBufferLimitBytes?: number;
  /** Called before every retry or hedge, with its number, delay and reason. */
  onRetry?(event: RetryEvent): void;
  /**
   * Hedging (gRFC A6): up to this many concurrent attempts, each started {@link hedgingDelayMs}
   * after the previous one unless one has answered; the first success or fatal status wins and
   * the others are cancelled. Statuses in {@link retryableStatuses} are non-fatal: the next
   * attempt starts at once. `1` turns hedging off; for calls without a request stream only.
   * Default 1.
   */
  hedgingMaxAttempts?: number;
  /** Delay between hedged attempts. Default 0. */
  hedgingDelayMs?: number;
}

/**
 * Call options read by the retry middleware: the {@link RetryPolicy} of each call, and its
 * deadline. Like every nice-grpc call option they can be given per call, or per client and per
 * method as the client's default call options
 * (`clientFactory.create(Service, channel, { '*': {…}, method: {…} })`).
 */
export interface RetryOptions extends RetryPolicy {
  onRetryableError?(error: ClientError, attempt: number, delayMs: number): void;
  /**
   * The call's deadline, as nice-grpc-client-middleware-deadline and @switchyard/middleware-deadline
   * name it: read to plan attempts, and passed on to a deadline middleware installed inside this
   * one (a relative deadline becomes the same `Date` for every attempt). The deadline of the
   * inbound call being served (`currentServedCall()`) applies too; the earlier one counts.
   */
  deadline?: Date | number;
}

/** What {@link RetryOptions.onRetry} receives: the diagnostics event plus the failure itself. */
export interface RetryEvent extends RetryAttemptEvent {
  /**
   * The failed attempt's error as its transport raised it (nice-grpc's `ClientError`);
   * undefined for a hedge started on its timer, and for the proxy's attempts.
   */
  readonly error: ClientError | undefined;
}

export const DEFAULT_RETRYABLE_STATUSES: readonly Status[] = [
  Status.UNKNOWN,
  Status.RESOURCE_EXHAUSTED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
];

export function isIdempotent(method: MethodDescriptor): boolean {
  const level = method.options?.idempotencyLevel;
  return level === 'IDEMPOTENT' || level === 'NO_SIDE_EFFECTS';
}
