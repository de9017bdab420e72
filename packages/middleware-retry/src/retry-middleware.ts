import { interceptClientCall } from '@switchyard/nice-grpc';
import type { CallOptions, ClientMiddleware, ClientMiddlewareCall } from 'nice-grpc-common';
import { isIdempotent, type RetryOptions } from './options.js';
import { type RetryDefaults, retriedCall } from './retry.js';
import { createRetryBudget, type RetryBudget } from './retry-budget.js';

/** Options of {@link createRetryMiddleware}. */
export interface RetryMiddlewareOptions {
  /**
   * The budget of calls that set no `retryBudget` option. Default: a new
   * `createRetryBudget()`, shared by every client this middleware instance serves.
   */
  budget?: RetryBudget;
  /** Uniform random numbers in [0, 1) for the backoff jitter. Default `Math.random`. */
  random?: () => number;
}

/**
 * Creates a retry middleware with its own default budget (and, for tests, random source): core's
 * retry layer ({@link retriedCall}, the one proxy-kit runs on its upstream calls) with each
 * call's options as its policy.
 *
 * Install it outside a deadline middleware — `createClientFactory().use(deadline).use(retry)` —
 * so that it sees the `deadline` option, plans its attempts within it and hands each attempt
 * what is left. Inside one (nice-grpc's recommended order) the deadline still ends the call,
 * but the retry cannot see it to plan with.
 */
export function createRetryMiddleware({
  budget = createRetryBudget(),
  random = Math.random,
}: RetryMiddlewareOptions = {}): ClientMiddleware<RetryOptions> {
  const defaults: RetryDefaults = { budget, random };
  return function retryMiddleware<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    options: CallOptions & Partial<RetryOptions>,
  ): AsyncGenerator<Response, Response | void, undefined> {
    return interceptClientCall(call, options, (c, next) =>
      retriedCall(c, next, options, defaults, isIdempotent(call.method)),
    );
  };
}

/**
 * The retry middleware with its own budget (10 s window, 10 retries/s reserve, 20 % of calls),
 * shared by every client it is installed on. Drop-in for nice-grpc-client-middleware-retry's
 * `retryMiddleware`.
 */
export const retryMiddleware: ClientMiddleware<RetryOptions> = createRetryMiddleware();
