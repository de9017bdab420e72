import { type Channel, channel } from 'node:diagnostics_channel';
import type { Status } from './status.js';

/**
 * Events that one Switchyard package reports and others (metrics, tracing) observe, published
 * on `node:diagnostics_channel` so that neither side imports the other and publishing costs
 * nothing when nobody listens (`hasSubscribers` is checked first).
 */

/** A retry or hedged attempt about to start. */
export interface RetryAttemptEvent {
  /** `/package.Service/Method` */
  readonly method: string;
  /** 1-based number of the attempt about to start (the first retry is attempt 2). */
  readonly attempt: number;
  /** How long the middleware waits before starting it, in milliseconds. */
  readonly delayMs: number;
  /** Why: `retry` after a retryable status, `transparent` when the server never saw the call, `hedge`. */
  readonly kind: 'retry' | 'transparent' | 'hedge';
  /** The status of the attempt that failed; undefined for a hedge started on a timer. */
  readonly code: Status | undefined;
}

/** A retry that the budget refused: the call fails with its original error. */
export interface RetryBudgetExhaustedEvent {
  readonly method: string;
  readonly code: Status;
}

/** Published by middleware-retry before each retry or hedge. */
export const retryAttemptChannel: Channel<RetryAttemptEvent> = channel(
  'switchyard:retry:attempt',
) as Channel<RetryAttemptEvent>;
/** Published by middleware-retry when the retry budget refuses a retry. */
export const retryBudgetExhaustedChannel: Channel<RetryBudgetExhaustedEvent> = channel(
  'switchyard:retry:budget-exhausted',
) as Channel<RetryBudgetExhaustedEvent>;

/** What an authorization middleware decided about one inbound call. */
export interface AuthorizationDecisionEvent {
  /** `/package.Service/Method` */
  readonly method: string;
  /**
   * `allow` and `deny` for a verified caller; `unauthenticated` when the call carried no verified
   * identity, so no policy was consulted.
   */
  readonly decision: 'allow' | 'deny' | 'unauthenticated';
  /** The caller's identity; undefined when `unauthenticated`. */
  readonly identity: string | undefined;
}

/** Published by middleware-identity's authorization middleware once per inbound call. */
export const authorizationDecisionChannel: Channel<AuthorizationDecisionEvent> = channel(
  'switchyard:identity:authorization',
) as Channel<AuthorizationDecisionEvent>;
