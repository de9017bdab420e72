import { currentCallScope } from '@switchyard/core';
import type { ClientMiddleware } from 'nice-grpc-common';

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
export const cancellationMiddleware: ClientMiddleware<CancellationOptions> =
  async function* cancellationMiddleware(call, options) {
    const { propagateCancellation = true, ...rest } = options;
    const inbound = propagateCancellation ? currentCallScope()?.signal : undefined;
    const own = rest.signal;
    if (inbound === undefined || own === inbound) return yield* call.next(call.request, rest);
    // Without a signal of its own the call can simply use the inbound one: nothing to link.
    if (own === undefined) return yield* call.next(call.request, { ...rest, signal: inbound });

    const controller = new AbortController();
    const abort = () => controller.abort();
    if (own.aborted || inbound.aborted) {
      controller.abort();
    } else {
      own.addEventListener('abort', abort);
      inbound.addEventListener('abort', abort);
    }
    try {
      return yield* call.next(call.request, { ...rest, signal: controller.signal });
    } finally {
      own.removeEventListener('abort', abort);
      inbound.removeEventListener('abort', abort);
    }
  };
