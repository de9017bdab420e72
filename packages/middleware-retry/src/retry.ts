import { setTimeout as sleep } from 'node:timers/promises';
import { type Call, exponentialBackoff, type Next, type Outcome, Status } from '@switchyard/core';
import { delay } from 'abort-controller-x';
import {
  announceAttempt,
  announceBudgetExhausted,
  attemptHeaders,
  callDeadline,
} from './attempts.js';
import { hedgedCall } from './hedging.js';
import {
  type RetryPolicy,
  type RetryPolicyDefaults,
  SWITCHYARD_RETRY_DEFAULTS,
} from './options.js';
import { NO_RETRY, parsePushback } from './pushback.js';
import type { RetryBudget } from './retry-budget.js';

/** No attempt starts with less than this left before the deadline, unless set otherwise. */
export const DEFAULT_MIN_ATTEMPT_TIME_MS = 10;
/** Request bytes kept for a replay, unless set otherwise (grpc-go's default per-RPC buffer). */
export const DEFAULT_RETRY_BUFFER_LIMIT_BYTES = 65_536;

/** What a call's retries are decided with, besides its policy. */
export interface RetryDefaults {
  /** The budget of calls whose policy names none. */
  readonly budget: RetryBudget;
  /** Uniform random numbers in [0, 1) for the backoff jitter. */
  readonly random: () => number;
  /** What the policy options a call leaves unset are. Default {@link SWITCHYARD_RETRY_DEFAULTS}. */
  readonly policy?: RetryPolicyDefaults;
}

/**
 * Retries (or hedges) one client call, once for every transport — nice-grpc's client and the
 * calls proxy-kit sends upstream alike (gRFC A6).
 *
 * An attempt is tried again when it failed before committing (no response reached the caller),
 * the transport can still send the request again (for streamed requests, while all of it fits in
 * `retryBufferLimitBytes`), and either its status is retryable and the call may be retried
 * (`retry`: idempotent), or the server provably never processed it (transparent retry, any
 * method). Each retry waits a full-jitter backoff or the server's `grpc-retry-pushback-ms`,
 * carries `grpc-previous-rpc-attempts`, starts only with `retryMinAttemptTimeMs` left before the
 * deadline, and draws on the retry budget — so a failing backend sees at most `1 + retryRatio`
 * times its normal load.
 *
 * `idempotent` is the transport's knowledge of the method: a proto's `idempotency_level`, a
 * proxy route's `idempotent`; `policy.retry` overrides it. Options the policy leaves unset take
 * `defaults.policy`: the nice-grpc middleware passes nice-grpc's, the proxy none (Switchyard's).
 */
export function retriedCall(
  call: Call,
  next: Next,
  policy: RetryPolicy,
  defaults: RetryDefaults,
  idempotent: boolean,
): Promise<Outcome> {
  // A successful call reads no more than this: the rest of the policy is read on a failure.
  const budget = policy.retryBudget ?? defaults.budget;
  budget.deposit();
  const base = defaults.policy ?? SWITCHYARD_RETRY_DEFAULTS;
  const { requestStream, responseStream } = call.method;
  // A single request is kept by the transport anyway; a streamed one (or one a proxy cannot
  // tell) only when it may be sent again.
  if (requestStream !== false && (policy.retryStreams ?? base.retryStreams)) {
    call.transport.retain(policy.retryBufferLimitBytes ?? DEFAULT_RETRY_BUFFER_LIMIT_BYTES);
  }
  const hedgingMaxAttempts = policy.hedgingMaxAttempts ?? 1;
  if (hedgingMaxAttempts > 1 && requestStream !== true) {
    return hedgedCall(call, next, {
      maxAttempts: hedgingMaxAttempts,
      delayMs: policy.hedgingDelayMs ?? 0,
      retryableStatuses: policy.retryableStatuses ?? base.retryableStatuses,
      transparentRetry: policy.transparentRetry ?? base.transparentRetry,
      budget,
      minAttemptTimeMs: policy.retryMinAttemptTimeMs ?? DEFAULT_MIN_ATTEMPT_TIME_MS,
      deadline: callDeadline(call),
      onRetry: policy.onRetry,
    });
  }
  // nice-grpc's middleware never retries a call with a stream: it passes such calls through.
  const streams = requestStream === true || responseStream === true;
  if (streams && !(policy.retryStreams ?? base.retryStreams)) return next(call);
  return next(call).then((outcome) =>
    outcome.status === Status.OK
      ? outcome
      : retryAfter(call, next, outcome, policy, base, budget, defaults.random, idempotent),
  );
}

/** The attempts after a first one that failed with `first`. */
async function retryAfter(
  call: Call,
  next: Next,
  first: Outcome,
  policy: RetryPolicy,
  base: RetryPolicyDefaults,
  budget: RetryBudget,
  random: () => number,
  idempotent: boolean,
): Promise<Outcome> {
  const {
    retry = idempotent,
    retryBaseDelayMs = 1000,
    retryMaxDelayMs = 30_000,
    retryMaxAttempts = 1,
    retryableStatuses = base.retryableStatuses,
    onRetryableError,
    retryJitter = base.retryJitter,
    transparentRetry = base.transparentRetry,
    retryPushback = base.retryPushback,
    retryWithinDeadline = base.retryWithinDeadline,
    retryMinAttemptTimeMs = DEFAULT_MIN_ATTEMPT_TIME_MS,
    onRetry,
  } = policy;
  const method = call.method.path;
  const deadline = callDeadline(call);
  // Planned around only when asked; each attempt is handed the deadline either way.
  const planned = retryWithinDeadline ? deadline : undefined;
  const backoff = exponentialBackoff({
    baseMs: retryBaseDelayMs,
    maxMs: retryMaxDelayMs,
    // Equal jitter is nice-grpc's `ceiling × (1 + random) / 2`: full jitter over [0.5, 1).
    random: retryJitter === 'equal' ? () => (1 + random()) / 2 : random,
  });
  let backoffIndex = 0;
  let outcome = first;
  for (let attempt = 1; ; attempt++) {
    // Retried are failures of the server or of the connection to it, not the caller's
    // cancellation or what a layer on this side decided (a deadline, a local error).
    if (outcome.status === Status.OK || outcome.committed) return outcome;
    if (outcome.origin === 'client' || outcome.origin === 'proxy') return outcome;
    if (!call.transport.replayable || call.signal?.aborted) return outcome;
    const transparent = transparentRetry && outcome.unprocessed === true;
    if (!transparent && !(retry && retryableStatuses.includes(outcome.status))) return outcome;
    if (attempt > retryMaxAttempts) return outcome;

    const pushback = retryPushback ? parsePushback(outcome.trailers) : undefined;
    if (pushback === NO_RETRY) return outcome;
    let delayMs: number;
    if (pushback === undefined) {
      // Full jitter (the proxy's) rather than gRFC A6's 0.8–1.2: narrow jitter keeps callers
      // that failed together retrying in waves; the budget, not the backoff, bounds the volume.
      delayMs = Math.round(backoff(backoffIndex++));
    } else {
      // gRFC A6: the server's delay replaces the backoff, which starts over afterwards.
      delayMs = pushback;
      backoffIndex = 0;
    }
    if (planned !== undefined && Date.now() + delayMs + retryMinAttemptTimeMs > planned) {
      return outcome;
    }
    if (!budget.withdraw()) {
      announceBudgetExhausted(method, outcome.status);
      return outcome;
    }

    onRetryableError?.(outcome.error, attempt - 1, delayMs);
    announceAttempt(
      onRetry,
      method,
      attempt + 1,
      delayMs,
      transparent ? 'transparent' : 'retry',
      outcome,
    );
    if (delayMs > 0) {
      try {
        // A call nothing can cancel sleeps without a signal: one shared never-aborted signal
        // would collect a listener per concurrent backoff.
        await (call.signal ? delay(call.signal, delayMs) : sleep(delayMs));
      } catch (error) {
        return cancelledDuringBackoff(error);
      }
      // Timers fire late on a busy event loop; the plan above does not excuse a late start.
      if (planned !== undefined && Date.now() + retryMinAttemptTimeMs > planned) return outcome;
    }
    outcome = await next({
      ...call,
      headers: attemptHeaders(call.headers, attempt + 1),
      attempt: attempt + 1,
      deadline,
    });
  }
}

/** The caller cancelled while a retry waited: the call ends as the caller's cancellation. */
function cancelledDuringBackoff(error: unknown): Outcome {
  return {
    status: Status.CANCELLED,
    message: 'The operation was cancelled',
    trailers: undefined,
    origin: 'client',
    committed: false,
    error,
  };
}
