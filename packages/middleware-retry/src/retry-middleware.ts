import { interceptClientCall } from '@switchyard/nice-grpc';
import type { CallOptions, ClientMiddleware, ClientMiddlewareCall } from 'nice-grpc-common';
import {
  isIdempotent,
  NICE_GRPC_RETRY_DEFAULTS,
  type RetryOptions,
  type RetryPolicyDefaults,
} from './options.js';
import { type RetryDefaults, retriedCall } from './retry.js';
import { type RetryBudget, UNBOUNDED_RETRY_BUDGET } from './retry-budget.js';

/** Options of {@link createRetryMiddleware}. */
export interface RetryMiddlewareOptions {
  /**
   * The budget of calls that set no `retryBudget` option, shared by every client this middleware
   * instance serves. Default {@link UNBOUNDED_RETRY_BUDGET}: no limit, as in
   * nice-grpc-client-middleware-retry; `createRetryBudget()` bounds a failing backend's load to
   * 1.2× plus a reserve.
   */
  budget?: RetryBudget;
  /** Uniform random numbers in [0, 1) for the backoff jitter. Default `Math.random`, read per call. */
  random?: () => number;
  /**
   * Values of the call options a call leaves unset (over {@link NICE_GRPC_RETRY_DEFAULTS}, the
   * default). `SWITCHYARD_RETRY_DEFAULTS` turns on what proxy-kit does: streams, full jitter,
   * transparent retry, pushback, retries planned within the deadline, RESOURCE_EXHAUSTED.
   */
  defaults?: Partial<RetryPolicyDefaults>;
}

/**
 * Creates a retry middleware: core's retry layer ({@link retriedCall}, the one proxy-kit runs on
 * its upstream calls) with each call's options as its policy. With no options it behaves as
 * nice-grpc-client-middleware-retry's `retryMiddleware` in every default; see
 * {@link RetryMiddlewareOptions} for what is better and opt-in.
 *
 * Install it as nice-grpc's README says, inside a deadline middleware
 * (`createClientFactory().use(retry).use(deadline)`): the deadline ends the call and its backoff.
 * Outside one (`.use(deadline).use(retry)`) it sees the `deadline` option, and with
 * `retryWithinDeadline` plans its attempts within it.
 */
export function createRetryMiddleware({
  budget = UNBOUNDED_RETRY_BUDGET,
  // Read per call, as nice-grpc's middleware reads it: a test that pins Math.random pins both.
  random = () => Math.random(),
  defaults,
}: RetryMiddlewareOptions = {}): ClientMiddleware<RetryOptions> {
  const retryDefaults: RetryDefaults = {
    budget,
    random,
    policy: defaults ? { ...NICE_GRPC_RETRY_DEFAULTS, ...defaults } : NICE_GRPC_RETRY_DEFAULTS,
  };
  return function retryMiddleware<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    options: CallOptions & Partial<RetryOptions>,
  ): AsyncGenerator<Response, Response | void, undefined> {
    return interceptClientCall(call, options, (c, next) =>
      retriedCall(c, next, options, retryDefaults, isIdempotent(call.method)),
    );
  };
}

/**
 * The retry middleware with nice-grpc-client-middleware-retry's defaults: a drop-in for its
 * `retryMiddleware` (the same options, defaults and behaviour; `test/compatibility.test.ts` runs
 * both side by side).
 */
export const retryMiddleware: ClientMiddleware<RetryOptions> = createRetryMiddleware();
