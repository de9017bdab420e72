import type { RetryAttemptEvent } from '@switchyard/core';
import { type ClientError, type MethodDescriptor, Status } from 'nice-grpc-common';
import type { RetryBudget } from './retry-budget.js';

/**
 * How a call is retried, whatever transport carries it: nice-grpc's call options
 * ({@link RetryOptions}) or a proxy route's retry policy. The first six are
 * nice-grpc-client-middleware-retry's, with the same names and meaning. Options left unset take
 * the transport's {@link RetryPolicyDefaults}: nice-grpc-client-middleware-retry's own in the
 * nice-grpc middleware ({@link NICE_GRPC_RETRY_DEFAULTS}), Switchyard's in the proxy
 * ({@link SWITCHYARD_RETRY_DEFAULTS}).
 */
export interface RetryPolicy {
  /**
   * Retry on {@link retryableStatuses}. Defaults to `true` for methods declared
   * `option idempotency_level = IDEMPOTENT` or `NO_SIDE_EFFECTS` (ts-proto passes it on),
   * `false` otherwise. With {@link transparentRetry}, failures that prove the server never saw
   * the call are retried either way.
   */
  retry?: boolean;
  /** First backoff ceiling; the n-th retry waits a jittered share of `base × 2^(n-1)`. Default 1000. */
  retryBaseDelayMs?: number;
  /** Largest backoff ceiling. Default 30 000. */
  retryMaxDelayMs?: number;
  /**
   * Most retries after the first attempt (nice-grpc's meaning: `1` is one retry, two attempts in
   * all). `Infinity` is allowed: the budget, the deadline and the signal still end the call.
   * Default 1.
   */
  retryMaxAttempts?: number;
  /**
   * Codes worth another attempt. Default: nice-grpc's `[UNKNOWN, INTERNAL, UNAVAILABLE,
   * CANCELLED]` in the middleware (a server that is shutting down may answer CANCELLED), the
   * proxy's `[UNKNOWN, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE]` (an overloaded server's
   * RESOURCE_EXHAUSTED, with its pushback) in the proxy.
   */
  retryableStatuses?: readonly Status[];
  /**
   * Called before each sequential retry's backoff, with the failed attempt's error (as its
   * transport raised it: nice-grpc's `ClientError`), its 0-based index and the delay — as
   * nice-grpc-client-middleware-retry calls it.
   */
  onRetryableError?(error: unknown, attempt: number, delayMs: number): void;

  /**
   * How the backoff ceiling is randomised: `equal` waits 0.5–1 × the ceiling (AWS's "equal
   * jitter", nice-grpc's formula `round(ceiling × (1 + random) / 2)`), `full` waits 0–1 × it
   * (AWS's "full jitter": callers that failed together do not retry together in waves; the
   * budget, not the backoff, bounds the volume). Default `equal` in the middleware, `full` in
   * the proxy.
   */
  retryJitter?: 'equal' | 'full';
  /**
   * Retry calls with a request or response stream too, by the streaming rules: before the first
   * response message, while the request stream fits {@link retryBufferLimitBytes}. `false` retries
   * unary calls only, as nice-grpc's middleware does. Default `false` in the middleware, `true` in
   * the proxy (which cannot tell a stream from a single message).
   */
  retryStreams?: boolean;
  /**
   * Retry, whatever the method and {@link retry}, the failures that prove the server never
   * processed the call: connection refused, REFUSED_STREAM, GOAWAY before processing.
   * Such retries still count against {@link retryMaxAttempts} and the budget. Default `false`
   * in the middleware (nice-grpc's retries nothing a method did not opt into), `true` in the proxy.
   */
  transparentRetry?: boolean;
  /**
   * Follow the server's `grpc-retry-pushback-ms` (gRFC A6): a delay replaces the backoff, a
   * negative or malformed value forbids the retry. Default `false` in the middleware (nice-grpc's
   * ignores it), `true` in the proxy.
   */
  retryPushback?: boolean;
  /**
   * Plan retries within the call's deadline (the `deadline` option this middleware sees, and the
   * deadline of the inbound call being served): no retry whose backoff would leave less than
   * {@link retryMinAttemptTimeMs}, so the call fails at once with its last error rather than
   * waiting for DEADLINE_EXCEEDED. Default `false` in the middleware (nice-grpc's sleeps until the
   * deadline ends the call), `true` in the proxy.
   */
  retryWithinDeadline?: boolean;
  /** The budget this call's retries and hedges draw from. Default: the middleware's own. */
  retryBudget?: RetryBudget;
  /** With {@link retryWithinDeadline}: no attempt starts with less than this left. Default 10. */
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

/** The values a transport gives the {@link RetryPolicy} options a call leaves unset. */
export interface RetryPolicyDefaults {
  readonly retryableStatuses: readonly Status[];
  readonly retryJitter: 'equal' | 'full';
  readonly retryStreams: boolean;
  readonly transparentRetry: boolean;
  readonly retryPushback: boolean;
  readonly retryWithinDeadline: boolean;
}

/**
 * nice-grpc-client-middleware-retry's behaviour (3.1), the nice-grpc middleware's defaults, so
 * that switching packages changes nothing: its codes in its order, unary calls only, equal
 * jitter, nothing retried that the method did not opt into, no pushback, no deadline planning.
 */
export const NICE_GRPC_RETRY_DEFAULTS: RetryPolicyDefaults = Object.freeze({
  retryableStatuses: Object.freeze([
    Status.UNKNOWN,
    Status.INTERNAL,
    Status.UNAVAILABLE,
    Status.CANCELLED,
  ]),
  retryJitter: 'equal',
  retryStreams: false,
  transparentRetry: false,
  retryPushback: false,
  retryWithinDeadline: false,
});

/**
 * Switchyard's retry behaviour, proxy-kit's defaults and an opt-in for the middleware
 * (`createRetryMiddleware({ defaults: SWITCHYARD_RETRY_DEFAULTS })`): gRFC A6's codes with
 * RESOURCE_EXHAUSTED rather than CANCELLED, streams by the streaming rules, full jitter,
 * transparent retry, pushback, and retries planned within the deadline.
 */
export const SWITCHYARD_RETRY_DEFAULTS: RetryPolicyDefaults = Object.freeze({
  retryableStatuses: Object.freeze([
    Status.UNKNOWN,
    Status.RESOURCE_EXHAUSTED,
    Status.INTERNAL,
    Status.UNAVAILABLE,
  ]),
  retryJitter: 'full',
  retryStreams: true,
  transparentRetry: true,
  retryPushback: true,
  retryWithinDeadline: true,
});

/** The codes {@link SWITCHYARD_RETRY_DEFAULTS} retries: proxy-kit's default for a route's retry. */
export const DEFAULT_RETRYABLE_STATUSES: readonly Status[] =
  SWITCHYARD_RETRY_DEFAULTS.retryableStatuses;

export function isIdempotent(method: MethodDescriptor): boolean {
  const level = method.options?.idempotencyLevel;
  return level === 'IDEMPOTENT' || level === 'NO_SIDE_EFFECTS';
}
