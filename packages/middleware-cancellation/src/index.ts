import { currentServedCall, interceptClientCall } from '@switchyard/nice-grpc';
import type { ClientMiddleware } from 'nice-grpc-common';
import { followingInbound } from './cancellation.js';

/** Call options of {@link cancellationMiddleware}. */
export interface CancellationOptions {
  /**
   * `false` detaches the call from the cancellation of the inbound call being served, so that
   * it runs on after that call ends early (grpc-go's `context.WithoutCancel`, grpc-js's
   * `propagate_flags` without CANCELLATION). Default `true`.
   */
  propagateCancellation?: boolean;
}

/**
 * Client middleware that cancels a call when the inbound call whose handler made it ends early:
 * cancelled by its own client, or past its deadline. The call is then reset on the wire
 * (RST_STREAM CANCEL) and fails with an `AbortError`, which nice-grpc answers as CANCELLED —
 * core's {@link followingInbound}, the cancellation layer proxy-kit runs too.
 *
 * The inbound call is found through `@switchyard/nice-grpc`'s call scope, which every Switchyard
 * server middleware establishes (`deadlineServerMiddleware`, or `callScopeServerMiddleware()`).
 * Outside a handler, calls pass through untouched.
 */
export const cancellationMiddleware: ClientMiddleware<CancellationOptions> = (call, options) => {
  const inbound = options.propagateCancellation === false ? undefined : currentServedCall()?.signal;
  const own = options.signal;
  // The common cases need no adapter: outside a handler the call passes through; without a
  // signal of its own it simply uses the inbound one.
  if (inbound === undefined || own === inbound) return call.next(call.request, options);
  if (own === undefined) return call.next(call.request, { ...options, signal: inbound });
  return interceptClientCall(call, options, (c, next) => followingInbound(c, next, inbound));
};

export * from './interceptors.js';
