import { currentCallScope } from '@switchyard/nice-grpc';
import type { CallOptions, ClientMiddleware, ClientMiddlewareCall } from 'nice-grpc-common';

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
 * (RST_STREAM CANCEL) and fails with an `AbortError`, which nice-grpc answers as CANCELLED.
 *
 * The inbound call is found through `@switchyard/core`'s call scope, which a server middleware
 * enters: `deadlineServerMiddleware` from `@switchyard/middleware-deadline`, or core's
 * `callScopeServerMiddleware()`. Outside a handler, calls pass through untouched.
 */
export const cancellationMiddleware: ClientMiddleware<CancellationOptions> = (call, options) => {
  const inbound = options.propagateCancellation === false ? undefined : currentCallScope()?.signal;
  const own = options.signal;
  // The common cases need no generator of their own, and no copy of the options (an object
  // rest copy is a slow path in V8), which keeps them nearly free: outside a handler the call
  // passes through; without a signal of its own it simply uses the inbound one.
  if (inbound === undefined || own === inbound) return call.next(call.request, options);
  if (own === undefined) return call.next(call.request, { ...options, signal: inbound });
  return linked(call, options, own, inbound);
};

/** Runs the call with a signal that aborts when either `own` or `inbound` does. */
async function* linked<Request, Response>(
  call: ClientMiddlewareCall<Request, Response>,
  options: CallOptions,
  own: AbortSignal,
  inbound: AbortSignal,
): AsyncGenerator<Response, Response | void, undefined> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  if (own.aborted || inbound.aborted) {
    controller.abort();
  } else {
    own.addEventListener('abort', abort);
    inbound.addEventListener('abort', abort);
  }
  try {
    return yield* call.next(call.request, { ...options, signal: controller.signal });
  } finally {
    own.removeEventListener('abort', abort);
    inbound.removeEventListener('abort', abort);
  }
}
