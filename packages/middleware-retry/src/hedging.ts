import { AbortError, delay } from 'abort-controller-x';
import {
  type CallOptions,
  ClientError,
  type ClientMiddlewareCall,
  type Metadata,
  type Status,
} from 'nice-grpc-common';
import { announceAttempt, announceBudgetExhausted, attemptMetadata } from './attempts.js';
import type { RetryEvent } from './options.js';
import { NO_RETRY, parsePushback } from './pushback.js';
import type { RetryBudget } from './retry-budget.js';
import { isTransparentFailure } from './transparent-failure.js';

/** A hedged call's settings, resolved from its call options. */
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

/** How an attempt's first step ended: a response message, a successful end, or a failure. */
type FirstStep<Request, Response> =
  | {
      attempt: HedgedAttempt<Request, Response>;
      result: IteratorResult<Response, Response | void>;
    }
  | { attempt: HedgedAttempt<Request, Response>; error: unknown };

/** One of a hedged call's concurrent attempts. */
class HedgedAttempt<Request, Response> {
  readonly controller = new AbortController();
  readonly iterator: AsyncGenerator<Response, Response | void, undefined>;
  readonly firstStep: Promise<FirstStep<Request, Response>>;
  headers: Metadata | undefined;
  trailers: Metadata | undefined;
  /** Once it has won, its headers and trailers go straight to the caller's hooks. */
  private won = false;

  constructor(call: ClientMiddlewareCall<Request, Response>, options: CallOptions, number: number) {
    const { onHeader, onTrailer } = options;
    this.iterator = call.next(call.request, {
      ...options,
      signal: this.controller.signal,
      metadata: number > 1 ? attemptMetadata(options.metadata, number) : options.metadata,
      onHeader: (headers) => {
        this.headers = headers;
        if (this.won) onHeader?.(headers);
      },
      onTrailer: (trailers) => {
        this.trailers = trailers;
        if (this.won) onTrailer?.(trailers);
      },
    });
    // Settled, never rejected: a cancelled loser's failure must not become an unhandled rejection.
    this.firstStep = this.iterator.next().then(
      (result) => ({ attempt: this, result }),
      (error: unknown) => ({ attempt: this, error }),
    );
  }

  /** Makes this attempt the call's: the caller's hooks get what it already received. */
  win(options: CallOptions): void {
    this.won = true;
    if (this.headers !== undefined) options.onHeader?.(this.headers);
    if (this.trailers !== undefined) options.onTrailer?.(this.trailers);
  }
}

/**
 * Runs a call as gRFC A6 hedging: attempt 1 now, each next one `delayMs` after the previous
 * (at once when one fails with a non-fatal status, or after the server's pushback), at most
 * `maxAttempts`, each drawing on the budget. The first attempt to deliver a response message —
 * or to end successfully — wins, a fatal status ends the call, and either way every other
 * attempt is cancelled: its HTTP/2 stream is reset, so the server's handler sees the
 * cancellation. The caller's onHeader/onTrailer see only the winner's metadata.
 */
export async function* hedgedCall<Request, Response>(
  call: ClientMiddlewareCall<Request, Response>,
  options: CallOptions,
  plan: HedgingPlan,
): AsyncGenerator<Response, Response | void, undefined> {
  const { signal } = options;
  const method = call.method.path;
  const attempts = new Set<HedgedAttempt<Request, Response>>();
  let wait: AbortController | undefined;
  const abortAll = () => {
    wait?.abort();
    for (const attempt of attempts) attempt.controller.abort();
  };
  signal?.addEventListener('abort', abortAll);

  let started = 0;
  let stopped = false;
  // The next attempt: when it may start (epoch ms), and why.
  let nextAt = 0;
  let nextDelayMs = 0;
  let nextAfter: ClientError | undefined;

  const startAttempt = (): void => {
    started++;
    if (started > 1)
      announceAttempt(plan.onRetry, method, started, nextDelayMs, 'hedge', nextAfter);
    attempts.add(new HedgedAttempt(call, options, started));
    scheduleNext(plan.delayMs, undefined);
  };
  const scheduleNext = (delayMs: number, after: ClientError | undefined): void => {
    nextAt = Date.now() + delayMs;
    nextDelayMs = delayMs;
    nextAfter = after;
  };
  const mayStartMore = (): boolean => !stopped && started < plan.maxAttempts;
  /** Deadline and budget allow the next attempt; otherwise no more start. */
  const admitNext = (): boolean => {
    if (plan.deadline !== undefined && Date.now() + plan.minAttemptTimeMs > plan.deadline) {
      stopped = true;
    } else if (!plan.budget.withdraw()) {
      if (nextAfter !== undefined) announceBudgetExhausted(method, nextAfter.code);
      stopped = true;
    }
    return !stopped;
  };
  /** Cancels every attempt but the winner and gives it the caller's hooks. */
  const commit = (winner: HedgedAttempt<Request, Response>): void => {
    for (const attempt of attempts) if (attempt !== winner) attempt.controller.abort();
    attempts.clear();
    attempts.add(winner);
    stopped = true;
    winner.win(options);
  };

  try {
    startAttempt();
    let lastError: unknown;
    while (true) {
      const contenders: Promise<FirstStep<Request, Response> | 'next' | 'aborted'>[] = [];
      for (const attempt of attempts) contenders.push(attempt.firstStep);
      if (mayStartMore()) {
        wait = new AbortController();
        contenders.push(
          delay(wait.signal, Math.max(0, nextAt - Date.now())).then(
            () => 'next' as const,
            () => 'aborted' as const,
          ),
        );
      }
      if (contenders.length === 0) throw lastError;
      const outcome = await Promise.race(contenders);
      wait?.abort();
      wait = undefined;
      // The wait is aborted only by the caller, whose abort also fails every attempt.
      if (outcome === 'aborted' || signal?.aborted) throw new AbortError();

      if (outcome === 'next') {
        if (admitNext()) startAttempt();
        continue;
      }

      const { attempt } = outcome;
      attempts.delete(attempt);
      if ('result' in outcome) {
        commit(attempt);
        if (outcome.result.done) return outcome.result.value;
        yield outcome.result.value;
        return yield* attempt.iterator;
      }

      const { error } = outcome;
      const nonFatal =
        error instanceof ClientError &&
        (plan.retryableStatuses.includes(error.code) ||
          (plan.transparentRetry && isTransparentFailure(error, attempt.trailers)));
      if (!nonFatal) {
        commit(attempt);
        throw error;
      }
      lastError = error;
      const pushback = parsePushback(attempt.trailers);
      if (pushback === NO_RETRY) {
        // gRFC A6: no more attempts, but those already sent may still answer.
        stopped = true;
      } else if (mayStartMore()) {
        scheduleNext(pushback ?? 0, error);
      }
      if (attempts.size === 0 && !mayStartMore()) {
        commit(attempt);
        throw error;
      }
    }
  } finally {
    signal?.removeEventListener('abort', abortAll);
    wait?.abort();
    // The winner has finished or its caller stopped reading; the losers are already cancelled.
    for (const attempt of attempts) attempt.controller.abort();
  }
}
