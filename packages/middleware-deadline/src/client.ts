import { encodeGrpcTimeout } from '@switchyard/core';
import { type CallScope, currentCallScope, lazySteps, settleSteps } from '@switchyard/nice-grpc';
import {
  type CallOptions,
  ClientError,
  type ClientMiddleware,
  type ClientMiddlewareCall,
  Metadata,
  Status,
} from 'nice-grpc-common';

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

/** Options of {@link deadlineClientMiddleware}. */
export interface DeadlineClientOptions {
  /**
   * Deadline in milliseconds for calls that set none, keyed by method path
   * (`'/package.Service/Method'`), service (`'/package.Service/*'`) or `'*'` for every call;
   * the most specific key wins. Default: none.
   */
  defaultDeadlines?: Readonly<Record<string, number>>;
  /**
   * No call gets more than this many milliseconds, whatever it asks for; a call without a
   * deadline gets exactly this (as Envoy's `max_grpc_timeout`). Default: no cap.
   */
  maxDeadline?: number;
  /**
   * Milliseconds by which a call made while serving an inbound call ends before the inbound
   * deadline, so the handler still has time to answer its own caller. Default: 5.
   */
  propagationOffset?: number;
}

/** Default {@link DeadlineClientOptions.propagationOffset}: one in-cluster round trip, with margin. */
export const DEFAULT_PROPAGATION_OFFSET = 5;

// grpc-js's server computes `(value * unit) | 0` (server-interceptors.ts, 1.10 to at least
// 1.14), so a grpc-timeout of 2^31 ms (~24.8 days) or more wraps to a deadline in the past and
// the call fails at once. This is the largest budget every grpc-js server reads correctly; it
// encodes exactly as '2147483S'.
const MAX_WIRE_TIMEOUT = 2_147_483_000;
// Node clamps longer setTimeout delays to 1 ms (TimeoutOverflowWarning); longer timers re-arm.
const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * Client middleware that gives calls a deadline, sends it as `grpc-timeout` so that any gRPC
 * server knows its budget, and fails the call locally with DEADLINE_EXCEEDED when it passes.
 *
 * A call made inside a server handler (found through `@switchyard/core`'s call scope) inherits
 * `min(own deadline, inbound deadline − propagationOffset)`.
 */
export function deadlineClientMiddleware({
  defaultDeadlines = {},
  maxDeadline = Number.POSITIVE_INFINITY,
  propagationOffset = DEFAULT_PROPAGATION_OFFSET,
}: DeadlineClientOptions = {}): ClientMiddleware<DeadlineOptions> {
  for (const [key, value] of Object.entries(defaultDeadlines)) {
    checkMs(`defaultDeadlines['${key}']`, value);
  }
  checkMs('maxDeadline', maxDeadline);
  checkMs('propagationOffset', propagationOffset);
  const defaultFor = defaultDeadlineLookup(defaultDeadlines);
  const imposesDeadlines =
    Object.keys(defaultDeadlines).length > 0 || maxDeadline !== Number.POSITIVE_INFINITY;

  // Runs when the call starts (its first iteration), as nice-grpc starts calls then.
  function withDeadline<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    options: CallOptions,
    deadline: Date | number | undefined,
    scope: CallScope | undefined,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const path = call.method.path;
    const now = Date.now();
    let at = Math.min(
      deadline === undefined ? now + defaultFor(path) : absolute(deadline, now),
      now + maxDeadline,
    );
    let inheritedFrom: string | undefined;
    if (scope?.deadline !== undefined) {
      const inherited = scope.deadline.getTime() - propagationOffset;
      if (inherited < at) {
        at = inherited;
        inheritedFrom = scope.method;
      }
    }
    if (at === Number.POSITIVE_INFINITY || options.signal?.aborted) {
      return call.next(call.request, options);
    }
    const remaining = at - now;
    // As grpc-go: a call whose deadline has passed fails without reaching the wire.
    if (remaining <= 0) throw deadlineExceeded(path, inheritedFrom);

    const metadata = Metadata(options.metadata).set(
      'grpc-timeout',
      encodeGrpcTimeout(Math.min(remaining, MAX_WIRE_TIMEOUT)),
    );
    const controller = new AbortController();
    const callerSignal = options.signal;
    const abort = () => controller.abort();
    callerSignal?.addEventListener('abort', abort);
    let expired = false;
    const expire = () => {
      const left = at - Date.now();
      if (left > 0) {
        timer = setTimeout(expire, Math.min(left, MAX_TIMER_DELAY));
        return;
      }
      expired = true;
      controller.abort();
    };
    let timer = setTimeout(expire, Math.min(remaining, MAX_TIMER_DELAY));

    return settleSteps<Response, Response | void>(
      call.next(call.request, { ...options, metadata, signal: controller.signal }),
      () => {
        clearTimeout(timer);
        callerSignal?.removeEventListener('abort', abort);
        // Whatever the aborted call threw (AbortError, CANCELLED), the reason was the deadline.
        if (expired) throw deadlineExceeded(path, inheritedFrom);
      },
    );
  }

  return (call, options) => {
    const { deadline } = options;
    // The call belongs to the handler that made it, so its scope is read here, not where the
    // call happens to be iterated.
    const scope = options.propagateDeadline === false ? undefined : currentCallScope();
    // A call with no deadline from anywhere needs no generator of its own: nearly free.
    if (deadline === undefined && scope?.deadline === undefined && !imposesDeadlines) {
      return call.next(call.request, options);
    }
    // Handled here: middleware further in (another deadline middleware) must not apply it again.
    const rest = { ...options, deadline: undefined, propagateDeadline: undefined };
    return lazySteps(() => withDeadline(call, rest, deadline, scope));
  };
}

/**
 * {@link deadlineClientMiddleware} with default options: a drop-in replacement for
 * nice-grpc-client-middleware-deadline's `deadlineMiddleware`.
 */
export const deadlineMiddleware: ClientMiddleware<DeadlineOptions> = deadlineClientMiddleware();

function absolute(deadline: Date | number, now: number): number {
  const at = deadline instanceof Date ? deadline.getTime() : now + deadline;
  if (Number.isNaN(at)) throw new RangeError(`invalid deadline: ${String(deadline)}`);
  return at;
}

function deadlineExceeded(path: string, inheritedFrom: string | undefined): ClientError {
  const details =
    inheritedFrom === undefined
      ? 'Deadline exceeded'
      : `Deadline exceeded (inherited from ${inheritedFrom})`;
  return new ClientError(path, Status.DEADLINE_EXCEEDED, details);
}

function checkMs(key: string, value: number): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(
      `deadline middleware option ${key} must be a number of milliseconds ≥ 0, got ${String(value)}`,
    );
  }
}

/** Method path → default budget in ms (Infinity for none), resolved once per path. */
function defaultDeadlineLookup(
  defaults: Readonly<Record<string, number>>,
): (path: string) => number {
  const fallback = defaults['*'] ?? Number.POSITIVE_INFINITY;
  if (Object.keys(defaults).length === 0) return () => fallback;
  const resolved = new Map<string, number>();
  return (path) => {
    let ms = resolved.get(path);
    if (ms === undefined) {
      const service = path.slice(0, path.lastIndexOf('/') + 1);
      ms = defaults[path] ?? defaults[`${service}*`] ?? fallback;
      resolved.set(path, ms);
    }
    return ms;
  };
}
