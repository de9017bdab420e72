import { type Call, Status as Codes, type Next, type Outcome, type Status } from '@switchyard/core';
import { AbortError, delay } from 'abort-controller-x';
import { announceAttempt, announceBudgetExhausted, attemptHeaders } from './attempts.js';
import type { RetryEvent } from './options.js';
import { NO_RETRY, parsePushback } from './pushback.js';
import type { RetryBudget } from './retry-budget.js';

/** A hedged call's settings, resolved from its policy. */
export interface HedgingPlan {
  readonly maxAttempts: number;
  readonly delayMs: number;
  /** gRFC A6's `nonFatalStatusCodes`: such a failure starts the next attempt at once. */
  readonly retryableStatuses: readonly Status[];
  readonly transparentRetry: boolean;
  readonly budget: RetryBudget;
  readonly minAttemptTimeMs: number;
  /** Epoch milliseconds. */
  readonly deadline: number | undefined;
  readonly onRetry: ((event: RetryEvent) => void) | undefined;
}

/** One of a hedged call's concurrent attempts. */
interface HedgedAttempt {
  readonly controller: AbortController;
  /** Settles with the attempt itself, so a race tells which one answered. */
  readonly ended: Promise<{ attempt: HedgedAttempt; outcome: Outcome }>;
}

/**
 * Runs a call as gRFC A6 hedging, once for every transport: attempt 1 now, each next one
 * `delayMs` after the previous (at once when one fails with a non-fatal status, or after the
 * server's pushback), at most `maxAttempts`, each drawing on the budget. The first success or
 * fatal status wins, and every other attempt is cancelled: its stream is reset, so the server's
 * handler sees the cancellation. An attempt that commits the call (a first response message of a
 * stream) wins there and then: the transport cancels the others, and no more start.
 */
export async function hedgedCall(call: Call, next: Next, plan: HedgingPlan): Promise<Outcome> {
  const method = call.method.path;
  const attempts = new Set<HedgedAttempt>();
  let wait: AbortController | undefined;
  const abortAll = () => {
    wait?.abort();
    for (const attempt of attempts) attempt.controller.abort();
  };
  call.signal?.addEventListener('abort', abortAll);

  let started = 0;
  let stopped = false;
  // The next attempt: when it may start (epoch ms), and why.
  let nextAt = 0;
  let nextDelayMs = 0;
  let nextAfter: Outcome | undefined;

  const startAttempt = (): void => {
    started++;
    if (started > 1)
      announceAttempt(plan.onRetry, method, started, nextDelayMs, 'hedge', nextAfter);
    const controller = new AbortController();
    const attempt: HedgedAttempt = {
      controller,
      ended: next({
        ...call,
        signal: controller.signal,
        headers: started > 1 ? attemptHeaders(call.headers, started) : call.headers,
        attempt: started,
      }).then((outcome) => ({ attempt, outcome })),
    };
    attempts.add(attempt);
    scheduleNext(plan.delayMs, undefined);
  };
  const scheduleNext = (delayMs: number, after: Outcome | undefined): void => {
    nextAt = Date.now() + delayMs;
    nextDelayMs = delayMs;
    nextAfter = after;
  };
  // Once a response reached the caller the call is committed: nothing more may start.
  const mayStartMore = (): boolean =>
    !stopped && started < plan.maxAttempts && call.transport.replayable;
  /** Deadline and budget allow the next attempt; otherwise no more start. */
  const admitNext = (): boolean => {
    if (plan.deadline !== undefined && Date.now() + plan.minAttemptTimeMs > plan.deadline) {
      stopped = true;
    } else if (!plan.budget.withdraw()) {
      if (nextAfter !== undefined) announceBudgetExhausted(method, nextAfter.status);
      stopped = true;
    }
    return !stopped;
  };
  const win = (winner: HedgedAttempt, outcome: Outcome): Outcome => {
    for (const attempt of attempts) if (attempt !== winner) attempt.controller.abort();
    attempts.clear();
    return outcome;
  };

  try {
    startAttempt();
    let last: Outcome | undefined;
    while (true) {
      const contenders: Promise<
        { attempt: HedgedAttempt; outcome: Outcome } | 'next' | 'aborted'
      >[] = [];
      for (const attempt of attempts) contenders.push(attempt.ended);
      if (mayStartMore()) {
        wait = new AbortController();
        contenders.push(
          delay(wait.signal, Math.max(0, nextAt - Date.now())).then(
            () => 'next' as const,
            () => 'aborted' as const,
          ),
        );
      }
      if (contenders.length === 0) return last!;
      const answer = await Promise.race(contenders);
      wait?.abort();
      wait = undefined;
      if (answer === 'aborted' || call.signal?.aborted) return cancelled();
      if (answer === 'next') {
        if (admitNext()) startAttempt();
        continue;
      }

      const { attempt, outcome } = answer;
      attempts.delete(attempt);
      // Another attempt committed the call and the transport cancelled this one for it.
      if (outcome.superseded) continue;
      if (outcome.status === Codes.OK || outcome.committed) return win(attempt, outcome);
      const nonFatal =
        outcome.origin !== 'client' &&
        outcome.origin !== 'proxy' &&
        (plan.retryableStatuses.includes(outcome.status) ||
          (plan.transparentRetry && outcome.unprocessed === true));
      if (!nonFatal) return win(attempt, outcome);
      last = outcome;
      const pushback = parsePushback(outcome.trailers);
      if (pushback === NO_RETRY) {
        // gRFC A6: no more attempts, but those already sent may still answer.
        stopped = true;
      } else if (mayStartMore()) {
        scheduleNext(pushback ?? 0, outcome);
      }
      if (attempts.size === 0 && !mayStartMore()) return win(attempt, outcome);
    }
  } finally {
    call.signal?.removeEventListener('abort', abortAll);
    wait?.abort();
    // The winner has finished or its caller stopped reading; the losers are already cancelled.
    for (const attempt of attempts) attempt.controller.abort();
  }
}

function cancelled(): Outcome {
  return {
    status: Codes.CANCELLED,
    message: 'The operation was cancelled',
    trailers: undefined,
    origin: 'client',
    committed: false,
    // What a nice-grpc caller that aborted sees.
    error: new AbortError(),
  };
}
