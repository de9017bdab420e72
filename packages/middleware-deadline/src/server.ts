import type { Call } from '@switchyard/core';
import { currentInboundCall, type StepsEnd, serveCall, settleSteps } from '@switchyard/nice-grpc';
import {
  type CallContext,
  ClientError,
  ServerError,
  type ServerMiddleware,
  type ServerMiddlewareCall,
  Status,
} from 'nice-grpc-common';

/** What {@link deadlineServerMiddleware} adds to a handler's call context. */
export interface DeadlineCallContextExt {
  /** When the client's budget runs out, from its `grpc-timeout`; `undefined` when it sent none. */
  readonly deadline: Date | undefined;
  /**
   * Milliseconds left until {@link deadline} (zero or negative once it has passed), or
   * `undefined` without one — as connect-es's `HandlerContext.timeoutMs()`.
   */
  timeoutMs(): number | undefined;
}

const MISSING_INTERCEPTOR =
  "deadlineServerMiddleware cannot see the call's deadline: create the server with " +
  "@switchyard/nice-grpc's inbound-call interceptor, createServer(withInboundCall(options))";

let warned = false;
const noTimeout = () => undefined;

/**
 * Server middleware that gives handlers the deadline their client sent, in the call context and
 * in the call scope, so that calls the handler makes inherit it.
 *
 * grpc-js (≥ 1.10) parses `grpc-timeout`, removes it from the metadata and enforces it: at the
 * deadline it answers DEADLINE_EXCEEDED, whether or not the handler has returned, and the call
 * context's signal aborts. The deadline only reaches middleware through
 * `@switchyard/nice-grpc`'s `inboundCallInterceptor`; without it every call fails with INTERNAL.
 *
 * A DEADLINE_EXCEEDED `ClientError` escaping the handler (a call it made ran out of time) ends
 * the call with DEADLINE_EXCEEDED rather than nice-grpc's UNKNOWN, as a grpc-go handler
 * returning that error would.
 */
export const deadlineServerMiddleware: ServerMiddleware<DeadlineCallContextExt> =
  function deadlineServerMiddleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, DeadlineCallContextExt>,
    context: CallContext,
  ) {
    if (currentInboundCall() === undefined) {
      if (!warned) {
        warned = true;
        process.emitWarning(MISSING_INTERCEPTOR, 'SwitchyardConfigWarning');
      }
      throw new ServerError(Status.INTERNAL, `server misconfigured: ${MISSING_INTERCEPTOR}`);
    }
    return settleSteps(
      // The served call carries the deadline grpc-js parsed: no layer of its own to run.
      serveCall(call, context, withDeadlineContext),
      deadlineStatus,
    );
  };

function withDeadlineContext(
  served: Call,
  context: CallContext,
): CallContext & DeadlineCallContextExt {
  const at = served.deadline;
  return {
    ...context,
    deadline: at === undefined ? undefined : new Date(at),
    timeoutMs: at === undefined ? noTimeout : () => at - Date.now(),
  };
}

function deadlineStatus(end: StepsEnd, error: unknown): void {
  if (end === 'failed' && error instanceof ClientError && error.code === Status.DEADLINE_EXCEEDED) {
    throw new ServerError(Status.DEADLINE_EXCEEDED, error.details);
  }
}
