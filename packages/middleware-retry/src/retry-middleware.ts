import { setTimeout as sleep } from 'node:timers/promises';
import { exponentialBackoff } from '@switchyard/core';
import { currentCallScope } from '@switchyard/nice-grpc';
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
  callStart,
} from './attempts.js';
import { hedgedCall } from './hedging.js';
import { DEFAULT_RETRYABLE_STATUSES, isIdempotent, type RetryOptions } from './options.js';
import { NO_RETRY, parsePushback } from './pushback.js';
import { RequestReplay } from './request-replay.js';
import { createRetryBudget, type RetryBudget } from './retry-budget.js';
import { isTransparentFailure } from './transparent-failure.js';

/** No attempt starts with less than this left before the deadline, unless set otherwise. */
const DEFAULT_MIN_ATTEMPT_TIME_MS = 10;

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
    // A successful call reads no more than this: the rest of the options are read when an
    // attempt fails (RetriedCall.retries), so the common case allocates as little as it can.
    const retryBudget = options.retryBudget ?? budget;
    retryBudget.deposit();
    const hedgingMaxAttempts = options.hedgingMaxAttempts ?? 1;
    if (hedgingMaxAttempts > 1 && !call.requestStream) {
      return hedgedCall(call, options, {
        maxAttempts: hedgingMaxAttempts,
        delayMs: options.hedgingDelayMs ?? 0,
        retryableStatuses: options.retryableStatuses ?? DEFAULT_RETRYABLE_STATUSES,
        transparentRetry: options.transparentRetry ?? true,
        budget: retryBudget,
        minAttemptTimeMs: options.retryMinAttemptTimeMs ?? DEFAULT_MIN_ATTEMPT_TIME_MS,
        deadline: callDeadline(options.deadline, callStart(options.deadline), currentCallScope()),
        onRetry: options.onRetry,
      });
    }
    const retried = new RetriedCall(call, options, retryBudget, random);
    // A client stream is replayed from its buffered requests, attempt after attempt.
    if (call.requestStream) return retried.retries(undefined);
    retried.start();
    return retried as unknown as AsyncGenerator<Response, Response | void, undefined>;
  };
}

/**
 * One call through the retry middleware. The first attempt of a call that sends a single request
 * runs with no generator of its own: its steps pass straight through (one `then` each), and only
 * a failure before any response message hands the call to {@link retries}, which decides on that
 * failure and carries on.
 */
class RetriedCall<Request, Response> {
  /** The current attempt's trailers: for pushback, and to tell a server's status from grpc-js's. */
  private trailers: Metadata | undefined;
  private attemptOptions: CallOptions & { deadline?: Date | number };
  private current: AsyncGenerator<Response, Response | void, undefined> | undefined;
  /** A response message reached the caller: from then on the call is committed. */
  private received = false;
  private retrying = false;
  /** A relative `deadline` counts from here (see {@link callStart}). */
  private readonly startedAt: number;

  constructor(
    private readonly call: ClientMiddlewareCall<Request, Response>,
    private readonly options: CallOptions & Partial<RetryOptions>,
    private readonly budget: RetryBudget,
    private readonly random: () => number,
  ) {
    this.startedAt = callStart(options.deadline);
    const { onTrailer } = options;
    // The caller's own onTrailer still sees every attempt's trailers.
    this.attemptOptions = {
      ...options,
      onTrailer: (received) => {
        this.trailers = received;
        onTrailer?.(received);
      },
    };
  }

  start(): void {
    this.current = this.call.next(this.call.request, this.attemptOptions);
  }

  next(): Promise<IteratorResult<Response, Response | void>> {
    const current = this.current!;
    // Retrying, or committed by a response message: failures pass through as they are.
    if (this.retrying || this.received) return current.next();
    return current
      .next()
      .then(this.call.responseStream ? (step) => this.stepped(step) : undefined, (error) =>
        this.failed(error),
      );
  }

  throw(error: unknown): Promise<IteratorResult<Response, Response | void>> {
    return this.current!.throw(error);
  }

  return(value: Response | void): Promise<IteratorResult<Response, Response | void>> {
    return this.current!.return(value);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private stepped(
    step: IteratorResult<Response, Response | void>,
  ): IteratorResult<Response, Response | void> {
    if (!step.done) this.received = true;
    return step;
  }

  private failed(error: unknown): Promise<IteratorResult<Response, Response | void>> {
    // Aborts are not ClientErrors; a stream that delivered a message is committed.
    if (this.retrying || this.received || !(error instanceof ClientError)) throw error;
    this.retrying = true;
    this.current = this.retries(error);
    return this.current.next();
  }

  /**
   * Attempts after the first (deciding first on `firstFailure`), or all of them for a client
   * stream, whose requests are replayed.
   */
  async *retries(
    firstFailure: ClientError | undefined,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const { call, options, budget, random, startedAt } = this;
    const {
      retry = isIdempotent(call.method),
      retryBaseDelayMs = 1000,
      retryMaxDelayMs = 30_000,
      retryMaxAttempts = 1,
      retryableStatuses = DEFAULT_RETRYABLE_STATUSES,
      onRetryableError,
      transparentRetry = true,
      retryMinAttemptTimeMs = DEFAULT_MIN_ATTEMPT_TIME_MS,
      retryBufferLimitBytes = 65_536,
      onRetry,
    } = options;
    const method = call.method.path;
    const replay = call.requestStream
      ? new RequestReplay(call.request, retryBufferLimitBytes)
      : undefined;
    let backoffIndex = 0;
    let deadline: number | undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        this.received = false;
        try {
          // The first attempt already failed on the fast path: decide on its error here.
          if (attempt === 1 && firstFailure !== undefined) throw firstFailure;
          this.trailers = undefined;
          const request = replay === undefined ? call.request : replay.attempt();
          if (!call.responseStream) return yield* call.next(request, this.attemptOptions);
          for await (const message of call.next(request, this.attemptOptions)) {
            this.received = true;
            yield message;
          }
          return;
        } catch (error) {
          rethrowAbortError(error);
          if (!(error instanceof ClientError) || this.received || replay?.replayable === false) {
            throw error;
          }
          const { trailers } = this;
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
          // Read on the first failure: the call's steps run in its caller's async context, so
          // the scope is the one the call started in.
          deadline ??= callDeadline(options.deadline, startedAt, currentCallScope());
          if (deadline !== undefined && Date.now() + delayMs + retryMinAttemptTimeMs > deadline) {
            throw error;
          }
          if (!budget.withdraw()) {
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
            await (options.signal ? delay(options.signal, delayMs) : sleep(delayMs));
            // Timers fire late on a busy event loop; the plan above does not excuse a late start.
            if (deadline !== undefined && Date.now() + retryMinAttemptTimeMs > deadline)
              throw error;
          }
          const attemptOptions = {
            ...this.attemptOptions,
            metadata: attemptMetadata(options.metadata, attempt + 1),
          };
          // A relative deadline would restart with every attempt; later ones get the same instant.
          if (typeof options.deadline === 'number') {
            attemptOptions.deadline = new Date(deadline!);
          }
          this.attemptOptions = attemptOptions;
        }
      }
    } finally {
      // Without this the caller's request iterable would never learn that the call ended early.
      replay?.close().catch(() => {});
    }
  }
}

/**
 * The retry middleware with its own budget (10 s window, 10 retries/s reserve, 20 % of calls),
 * shared by every client it is installed on. Drop-in for nice-grpc-client-middleware-retry's
 * `retryMiddleware`.
 */
export const retryMiddleware: ClientMiddleware<RetryOptions> = createRetryMiddleware();
