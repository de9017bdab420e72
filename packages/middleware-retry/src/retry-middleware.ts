import { setTimeout as sleep } from 'node:timers/promises';
import { currentCallScope, exponentialBackoff } from '@switchyard/core';
import { delay, rethrowAbortError } from 'abort-controller-x';
import {
  type CallOptions,
  ClientError,
  type ClientMiddleware,
  type ClientMiddlewareCall,
  type Metadata,
} from 'nice-grpc-common';
import {
  announceAttempt,
  announceBudgetExhausted,
  attemptMetadata,
  callDeadline,
} from './attempts.js';
import { hedgedCall } from './hedging.js';
import { DEFAULT_RETRYABLE_STATUSES, isIdempotent, type RetryOptions } from './options.js';
import { NO_RETRY, parsePushback } from './pushback.js';
import { RequestReplay } from './request-replay.js';
import { createRetryBudget, type RetryBudget } from './retry-budget.js';
import { isTransparentFailure } from './transparent-failure.js';

/** Options of {@link createRetryMiddleware}. */
export interface RetryMiddlewareOptions {
  /**
   * The budget of calls that set no `retryBudget` option. Default: a new
   * `createRetryBudget()`, shared by every client this middleware instance serves.
   */
  budget?: RetryBudget;
  /** Uniform random numbers in [0, 1) for the backoff jitter. Default `Math.random`. */
  random?: () => number;
}

/**
 * Creates a retry middleware with its own default budget (and, for tests, random source).
 *
 * Install it outside a deadline middleware — `createClientFactory().use(deadline).use(retry)` —
 * so that it sees the `deadline` option, plans its attempts within it and hands each attempt
 * what is left. Inside one (nice-grpc's recommended order) the deadline still ends the call,
 * but the retry cannot see it to plan with.
 */
export function createRetryMiddleware({
  budget = createRetryBudget(),
  random = Math.random,
}: RetryMiddlewareOptions = {}): ClientMiddleware<RetryOptions> {
  return function retryMiddleware<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    options: CallOptions & Partial<RetryOptions>,
  ): AsyncGenerator<Response, Response | void, undefined> {
    // Read one by one rather than split off with an object rest: V8 copies the rest of an
    // object with excluded keys on a slow path, a cost every successful call would pay. The
    // retry options stay in the options passed on; only a retry middleware reads them.
    const {
      retry = isIdempotent(call.method),
      retryBaseDelayMs = 1000,
      retryMaxDelayMs = 30_000,
      retryMaxAttempts = 1,
      retryableStatuses = DEFAULT_RETRYABLE_STATUSES,
      onRetryableError,
      transparentRetry = true,
      retryBudget = budget,
      retryMinAttemptTimeMs = 10,
      retryBufferLimitBytes = 65_536,
      onRetry,
      hedgingMaxAttempts = 1,
      hedgingDelayMs = 0,
    } = options;
    // Only a relative `deadline` needs the start time; the success path skips the clock.
    const startedAt = typeof options.deadline === 'number' ? Date.now() : 0;
    const scope = currentCallScope();
    const method = call.method.path;
    retryBudget.deposit();

    if (hedgingMaxAttempts > 1 && !call.requestStream) {
      return hedgedCall(call, options, {
        maxAttempts: hedgingMaxAttempts,
        delayMs: hedgingDelayMs,
        retryableStatuses,
        transparentRetry,
        budget: retryBudget,
        minAttemptTimeMs: retryMinAttemptTimeMs,
        deadline: callDeadline(options.deadline, startedAt, scope),
        onRetry,
      });
    }

    // The trailers of the current attempt, for pushback and for telling a server's status from
    // one grpc-js made up; the caller's own onTrailer still sees every attempt's.
    let trailers: Metadata | undefined;
    const { onTrailer } = options;
    const nextOptions: CallOptions & { deadline?: Date | number } = {
      ...options,
      onTrailer(received) {
        trailers = received;
        onTrailer?.(received);
      },
    };
    const replay = call.requestStream
      ? new RequestReplay(call.request, retryBufferLimitBytes)
      : undefined;
    let attemptOptions = nextOptions;
    let backoffIndex = 0;
    let deadline: number | undefined;

    // Attempts after the first, or all of them for a client stream (whose requests are replayed).
    async function* attempts(
      firstFailure?: ClientError,
    ): AsyncGenerator<Response, Response | void, undefined> {
      try {
        for (let attempt = 1; ; attempt++) {
          // Set once a response message reached the caller: from then on the call is committed.
          let received = false;
          try {
            // The first attempt already failed on the fast path: decide on its error here.
            if (attempt === 1 && firstFailure !== undefined) throw firstFailure;
            trailers = undefined;
            const request = replay === undefined ? call.request : replay.attempt();
            if (!call.responseStream) return yield* call.next(request, attemptOptions);
            for await (const message of call.next(request, attemptOptions)) {
              received = true;
              yield message;
            }
            return;
          } catch (error) {
            rethrowAbortError(error);
            if (!(error instanceof ClientError) || received || replay?.replayable === false) {
              throw error;
            }
            const transparent = transparentRetry && isTransparentFailure(error, trailers);
            if (!transparent && !(retry && retryableStatuses.includes(error.code))) throw error;
            if (attempt > retryMaxAttempts) throw error;

            const pushback = parsePushback(trailers);
            if (pushback === NO_RETRY) throw error;
            let delayMs: number;
            if (pushback === undefined) {
              // Full jitter rather than gRFC A6's 0.8–1.2: narrow jitter keeps callers that failed
              // together retrying in waves; the budget, not the backoff, bounds the volume.
              const backoff = exponentialBackoff({
                baseMs: retryBaseDelayMs,
                maxMs: retryMaxDelayMs,
                random,
              });
              delayMs = Math.round(backoff(backoffIndex++));
            } else {
              // gRFC A6: the server's delay replaces the backoff, which starts over afterwards.
              delayMs = pushback;
              backoffIndex = 0;
            }
            deadline ??= callDeadline(options.deadline, startedAt, scope);
            if (deadline !== undefined && Date.now() + delayMs + retryMinAttemptTimeMs > deadline) {
              throw error;
            }
            if (!retryBudget.withdraw()) {
              announceBudgetExhausted(method, error.code);
              throw error;
            }

            onRetryableError?.(error, attempt - 1, delayMs);
            announceAttempt(
              onRetry,
              method,
              attempt + 1,
              delayMs,
              transparent ? 'transparent' : 'retry',
              error,
            );
            if (delayMs > 0) {
              // A call without a signal sleeps without one: a shared never-aborted signal would
              // collect one listener per concurrent backoff.
              await (nextOptions.signal ? delay(nextOptions.signal, delayMs) : sleep(delayMs));
              // Timers fire late on a busy event loop; the plan above does not excuse a late start.
              if (deadline !== undefined && Date.now() + retryMinAttemptTimeMs > deadline)
                throw error;
            }
            attemptOptions = {
              ...nextOptions,
              metadata: attemptMetadata(nextOptions.metadata, attempt + 1),
            };
            // A relative deadline would restart with every attempt; later ones get the same instant.
            if (typeof options.deadline === 'number') {
              attemptOptions.deadline = new Date(deadline!);
            }
          }
        }
      } finally {
        // Without this the caller's request iterable would never learn that the call ended early.
        replay?.close().catch(() => {});
      }
    }

    if (replay !== undefined) return attempts();
    return new FirstAttempt(
      call.next(call.request, attemptOptions),
      attempts,
    ) as unknown as AsyncGenerator<Response, Response | void, undefined>;
  };
}

/**
 * The first attempt of a call that sends a single request, with no generator of its own: its
 * steps pass straight through (one `then` each), and only a failure before any response message
 * hands the call to the retrying generator, which decides on that failure and carries on.
 */
class FirstAttempt<T, R> {
  private received = false;
  private retrying = false;
  private readonly onStep = (step: IteratorResult<T, R>) => {
    if (!step.done) this.received = true;
    return step;
  };
  private readonly onError = (error: unknown): Promise<IteratorResult<T, R>> => {
    // Aborts are not ClientErrors; a stream that delivered a message is committed.
    if (this.retrying || this.received || !(error instanceof ClientError)) throw error;
    this.retrying = true;
    this.current = this.retries(error);
    return this.current.next();
  };

  constructor(
    private current: AsyncGenerator<T, R, undefined>,
    private readonly retries: (failure: ClientError) => AsyncGenerator<T, R, undefined>,
  ) {}

  next(): Promise<IteratorResult<T, R>> {
    if (this.retrying) return this.current.next();
    return this.current.next().then(this.onStep, this.onError);
  }

  throw(error: unknown): Promise<IteratorResult<T, R>> {
    return this.current.throw(error);
  }

  return(value: R): Promise<IteratorResult<T, R>> {
    return this.current.return(value);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * The retry middleware with its own budget (10 s window, 10 retries/s reserve, 20 % of calls),
 * shared by every client it is installed on. Drop-in for nice-grpc-client-middleware-retry's
 * `retryMiddleware`.
 */
export const retryMiddleware: ClientMiddleware<RetryOptions> = createRetryMiddleware();
