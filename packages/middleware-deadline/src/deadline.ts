import {
  type Call,
  deadlines,
  type Expiring,
  encodeGrpcTimeout,
  type Interceptor,
  type Next,
  type Outcome,
  proxyOutcome,
  Status,
} from '@switchyard/core';

/** What the deadline layer does with the calls it sees, fixed when it is created. */
export interface DeadlinePolicy {
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
   * deadline, so the handler (or proxy) still has time to answer its own caller. Default: 5.
   */
  propagationOffset?: number;
}

/** Default {@link DeadlinePolicy.propagationOffset}: one in-cluster round trip, with margin. */
export const DEFAULT_PROPAGATION_OFFSET = 5;

// grpc-js's server computes `(value * unit) | 0` (server-interceptors.ts, 1.10 to at least
// 1.14), so a grpc-timeout of 2^31 ms (~24.8 days) or more wraps to a deadline in the past and
// the call fails at once. This is the largest budget every grpc-js server reads correctly; it
// encodes exactly as '2147483S'.
const MAX_WIRE_TIMEOUT = 2_147_483_000;

/** A {@link DeadlinePolicy} with its defaults in place and its values checked. */
export interface ResolvedDeadlinePolicy {
  /** The default budget of a method, in ms (Infinity for none). */
  defaultFor(path: string): number;
  readonly maxDeadline: number;
  readonly propagationOffset: number;
  /** Whether any call gets a deadline it did not ask for (a default or the cap). */
  readonly imposesDeadlines: boolean;
}

/** Checks a policy's values (naming the bad one) and resolves its defaults. */
export function resolveDeadlinePolicy({
  defaultDeadlines = {},
  maxDeadline = Number.POSITIVE_INFINITY,
  propagationOffset = DEFAULT_PROPAGATION_OFFSET,
}: DeadlinePolicy = {}): ResolvedDeadlinePolicy {
  for (const [key, value] of Object.entries(defaultDeadlines)) {
    checkMs(`defaultDeadlines['${key}']`, value);
  }
  checkMs('maxDeadline', maxDeadline);
  checkMs('propagationOffset', propagationOffset);
  return {
    defaultFor: defaultDeadlineLookup(defaultDeadlines),
    maxDeadline,
    propagationOffset,
    imposesDeadlines:
      Object.keys(defaultDeadlines).length > 0 || maxDeadline !== Number.POSITIVE_INFINITY,
  };
}

/**
 * The deadline of client calls (a proxy's calls upstream included), once for every transport:
 * `min(the call's own deadline or its default, now + maxDeadline, the inbound call's deadline −
 * propagationOffset)`. The deadline goes on the wire as `grpc-timeout`, so any gRPC server knows
 * its budget, and is enforced here: when it passes the call is cancelled and ends with
 * DEADLINE_EXCEEDED, whether or not the server answers. A call whose deadline has already passed
 * fails at once, without reaching the wire (as grpc-go).
 */
export function deadlineInterceptor(policy: DeadlinePolicy = {}): Interceptor {
  const resolved = resolveDeadlinePolicy(policy);
  return (call, next) => withDeadline(call, next, resolved, true);
}

/**
 * {@link deadlineInterceptor}'s work on one call, for transports that decide per call whether
 * the inbound deadline applies (`propagate`; nice-grpc's `propagateDeadline` call option).
 */
export function withDeadline(
  call: Call,
  next: Next,
  policy: ResolvedDeadlinePolicy,
  propagate: boolean,
): Promise<Outcome> {
  const path = call.method.path;
  const now = Date.now();
  let at = Math.min(call.deadline ?? now + policy.defaultFor(path), now + policy.maxDeadline);
  let inheritedFrom: string | undefined;
  const inbound = propagate ? call.inbound : undefined;
  if (inbound?.deadline !== undefined) {
    const inherited = inbound.deadline - policy.propagationOffset;
    if (inherited < at) {
      at = inherited;
      inheritedFrom = inbound.method.path;
    }
  }
  if (at === Number.POSITIVE_INFINITY || call.signal?.aborted) return next(call);
  const remaining = at - now;
  if (remaining <= 0) return Promise.resolve(deadlineExceeded(inheritedFrom));
  call.headers.set('grpc-timeout', encodeGrpcTimeout(Math.min(remaining, MAX_WIRE_TIMEOUT)));
  return enforced(call, next, at, inheritedFrom);
}

/**
 * One call's deadline being enforced: a controller that aborts the call at `at` (or when the
 * caller's own signal does), on core's shared deadline queue. A class with its callbacks as
 * methods, so a call costs one object and no closure but its outcome's.
 */
class Enforcement implements Expiring {
  readonly controller = new AbortController();
  expired = false;

  constructor(
    readonly at: number,
    readonly caller: AbortSignal | undefined,
  ) {
    deadlines.add(this);
    if (caller === undefined) return;
    if (caller.aborted) this.controller.abort();
    else caller.addEventListener('abort', this);
  }

  expire(): void {
    this.expired = true;
    this.controller.abort();
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.controller.abort();
  }

  end(): void {
    deadlines.delete(this);
    this.caller?.removeEventListener('abort', this);
  }
}

function enforced(
  call: Call,
  next: Next,
  at: number,
  inheritedFrom: string | undefined,
): Promise<Outcome> {
  const enforcement = new Enforcement(at, call.signal);
  return next({ ...call, deadline: at, signal: enforcement.controller.signal }).then(
    (outcome) => {
      enforcement.end();
      // Whatever the aborted call reported (CANCELLED, a reset), the reason was the deadline.
      return enforcement.expired ? deadlineExceeded(inheritedFrom, outcome.committed) : outcome;
    },
    (error: unknown) => {
      enforcement.end();
      throw error;
    },
  );
}

function deadlineExceeded(inheritedFrom: string | undefined, committed = false): Outcome {
  const message =
    inheritedFrom === undefined
      ? 'Deadline exceeded'
      : `Deadline exceeded (inherited from ${inheritedFrom})`;
  return proxyOutcome(Status.DEADLINE_EXCEEDED, message, committed);
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
