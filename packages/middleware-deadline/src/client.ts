import { currentServedCall, interceptClientCall } from '@switchyard/nice-grpc';
import type { ClientMiddleware } from 'nice-grpc-common';
import { type DeadlinePolicy, resolveDeadlinePolicy, withDeadline } from './deadline.js';

/**
 * Call options of {@link deadlineMiddleware}. `deadline` is the option of
 * nice-grpc-client-middleware-deadline, with the same meaning, so switching is a change of import.
 */
export interface DeadlineOptions {
  /**
   * Deadline for the call: a `Date` is absolute, a number is milliseconds from the call's start
   * (its first iteration, as nice-grpc-client-middleware-deadline counts). When it
   * passes, the call is cancelled and fails with `ClientError` DEADLINE_EXCEEDED. By default,
   * the middleware's `defaultDeadlines` apply, else there is none.
   */
  deadline?: Date | number;
  /**
   * `false` detaches the call from the deadline of the inbound call being served (grpc-go's
   * `context.WithoutCancel`, grpc-js's `propagate_flags` without DEADLINE). Default `true`.
   */
  propagateDeadline?: boolean;
}

/** Options of {@link deadlineClientMiddleware}: the {@link DeadlinePolicy} of its calls. */
export type DeadlineClientOptions = DeadlinePolicy;

/**
 * Client middleware that gives calls a deadline, sends it as `grpc-timeout` so that any gRPC
 * server knows its budget, and fails the call locally with DEADLINE_EXCEEDED when it passes —
 * core's {@link withDeadline}, the deadline layer proxy-kit runs too.
 *
 * A call made inside a server handler (found through `@switchyard/nice-grpc`'s call scope)
 * inherits `min(own deadline, inbound deadline − propagationOffset)`.
 */
export function deadlineClientMiddleware(
  options: DeadlineClientOptions = {},
): ClientMiddleware<DeadlineOptions> {
  const policy = resolveDeadlinePolicy(options);
  return (call, options) => {
    const { deadline } = options;
    if (deadline !== undefined) checkDeadline(deadline);
    const propagate = options.propagateDeadline !== false;
    // The call belongs to the handler that made it: the adapter reads its inbound call here,
    // not where the call happens to be iterated.
    const inbound = propagate ? currentServedCall() : undefined;
    // A call with no deadline from anywhere passes untouched: nearly free.
    if (deadline === undefined && inbound?.deadline === undefined && !policy.imposesDeadlines) {
      return call.next(call.request, options);
    }
    return interceptClientCall(call, options, (c, next) =>
      withDeadline(c, next, policy, propagate),
    );
  };
}

/**
 * {@link deadlineClientMiddleware} with default options: a drop-in replacement for
 * nice-grpc-client-middleware-deadline's `deadlineMiddleware`.
 */
export const deadlineMiddleware: ClientMiddleware<DeadlineOptions> = deadlineClientMiddleware();

function checkDeadline(deadline: Date | number): void {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (typeof at !== 'number' || Number.isNaN(at)) {
    throw new RangeError(`invalid deadline: ${String(deadline)}`);
  }
}
