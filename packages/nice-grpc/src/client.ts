import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type Call,
  type CallTransport,
  HeaderList,
  type Headers,
  type Interceptor,
  type MessageTap,
  type Outcome,
  Status,
} from '@switchyard/core';
import type {
  CallOptions,
  ClientMiddleware,
  ClientMiddlewareCall,
  Metadata,
} from 'nice-grpc-common';
import { currentServedCall } from './call-scope.js';
import { MetadataHeaders, toMetadata } from './metadata-headers.js';
import { clientErrorOf, errorOutcome, methodOf, okOutcome } from './outcomes.js';
import { RequestReplay } from './request-replay.js';
import { SingleStep, tapSteps } from './steps.js';
import { isTransparentFailure } from './transparent-failure.js';

/**
 * Runs `interceptor` on one nice-grpc client call, as a client middleware received it: the
 * layers see core's {@link Call} (its `inbound` is the server call being served, if any) and
 * every `next` they make is one attempt through nice-grpc's `call.next`.
 *
 * The call starts at its first iteration, as nice-grpc starts calls: a relative `deadline`
 * option counts from there. A unary response is the outcome's `value`; a response stream is
 * relayed to the caller as it arrives, from the attempt that delivers the first message — that
 * attempt commits the call, and attempts still running (hedges) are cancelled, so the caller
 * sees one attempt's messages only.
 */
export function interceptClientCall<Request, Response>(
  call: ClientMiddlewareCall<Request, Response>,
  options: CallOptions,
  interceptor: Interceptor,
): AsyncGenerator<Response, Response | void, undefined> {
  if (call.responseStream) {
    return new StreamingClientCall(call, options, interceptor) as unknown as AsyncGenerator<
      Response,
      Response | void,
      undefined
    >;
  }
  const unary = new UnaryClientCall(call, options, interceptor);
  return new SingleStep(() => unary.result()) as unknown as AsyncGenerator<
    Response,
    Response | void,
    undefined
  >;
}

/** An attempt cancelled because another one of the same call answered first. */
const SUPERSEDED: Outcome = Object.freeze({
  status: Status.CANCELLED,
  message: 'another attempt answered first',
  trailers: undefined,
  origin: 'proxy',
  committed: false,
  superseded: true,
});

/** The caller stopped reading the response stream: it cancelled the call. */
const STOPPED: Outcome = Object.freeze({
  status: Status.CANCELLED,
  message: 'the caller stopped reading the response stream',
  trailers: undefined,
  origin: 'client',
  committed: true,
});

/** Client calls forward nothing: only server calls have an inbound request to forward from. */
const NOTHING_FORWARDED: Headers = new HeaderList();

/** The part of both kinds of call that starts attempts and serves as their transport. */
abstract class InterceptedClientCall<Request, Response> implements CallTransport {
  protected committed = false;
  protected taps: MessageTap[] | undefined = undefined;
  #replay: RequestReplay<Request> | undefined = undefined;

  constructor(
    protected readonly call: ClientMiddlewareCall<Request, Response>,
    protected readonly options: CallOptions,
    private readonly interceptor: Interceptor,
  ) {}

  // ---- CallTransport ----

  get replayable(): boolean {
    if (this.committed) return false;
    return !this.call.requestStream || this.#replay?.replayable === true;
  }

  get forwardHeaders(): Headers {
    return NOTHING_FORWARDED;
  }

  get peerAddress(): undefined {
    // nice-grpc does not say which connection of its channel a call went out on.
    return undefined;
  }

  retain(limitBytes: number): void {
    // A single request is the caller's object, kept by the call anyway.
    if (this.call.requestStream && this.#replay === undefined) {
      this.#replay = new RequestReplay(this.call.request, limitBytes);
    }
  }

  tap(tap: MessageTap): void {
    if (this.taps === undefined) this.taps = [tap];
    else this.taps.push(tap);
  }

  peerCertificate(): undefined {
    return undefined;
  }

  // ---- Attempts ----

  /** Runs the interceptor on the call as the caller made it. */
  protected run(): Promise<Outcome> {
    const { options } = this;
    const deadline = (options as { deadline?: Date | number }).deadline;
    const call: Call = {
      side: 'client',
      method: methodOf(this.call.method),
      headers: new MetadataHeaders(options.metadata),
      deadline:
        deadline === undefined
          ? undefined
          : deadline instanceof Date
            ? deadline.getTime()
            : Date.now() + deadline,
      signal: options.signal,
      peer: undefined,
      inbound: currentServedCall(),
      attempt: 1,
      transport: this,
    };
    try {
      return this.interceptor(call, this.attempt);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `next` of the innermost layer: one attempt through nice-grpc. */
  protected readonly attempt = (call: Call): Promise<Outcome> => {
    const record = new AttemptRecord<Response>();
    const { onTrailer } = this.options;
    const options: CallOptions & { deadline?: Date } = {
      ...this.options,
      metadata: toMetadata(call.headers),
      signal: call.signal,
      onTrailer: (trailers) => {
        record.trailers = trailers;
        onTrailer?.(trailers);
      },
      // Middleware further in (a deadline of nice-grpc's or ours) sees the call's deadline.
      deadline: call.deadline === undefined ? undefined : new Date(call.deadline),
    };
    record.steps = this.call.next(this.#request(), options) as AsyncGenerator<
      Response,
      Response | void,
      undefined
    >;
    return this.started(record);
  };

  /** What becomes of an attempt once its steps exist. */
  protected abstract started(record: AttemptRecord<Response>): Promise<Outcome>;

  #request(): Request | AsyncIterable<Request> {
    const { call, taps } = this;
    if (!call.requestStream) {
      if (taps !== undefined)
        for (const tap of taps) tap.message('request', undefined, call.request);
      return call.request;
    }
    const source = this.#replay?.attempt() ?? call.request;
    if (taps === undefined) return source;
    return tapSteps<Request, void>(source, (step) => {
      if (!step.done) for (const tap of taps) tap.message('request', undefined, step.value);
    });
  }

  protected failed(record: AttemptRecord<Response>, error: unknown): Outcome {
    return errorOutcome(
      error,
      record.trailers,
      this.committed,
      isTransparentFailure(error, record.trailers),
    );
  }

  protected delivered(message: Response): void {
    this.committed = true;
    const { taps } = this;
    if (taps !== undefined) for (const tap of taps) tap.message('response', undefined, message);
  }

  protected ended(): void {
    // Without the request the caller would never learn that the call ended before it did.
    this.#replay?.close().catch(() => {});
  }
}

/** One attempt: nice-grpc's steps, the trailers they reported, and how the attempt ended. */
class AttemptRecord<Response> {
  steps!: AsyncGenerator<Response, Response | void, undefined>;
  trailers: Metadata | undefined = undefined;
  /** The first step, once it settled: a message, the end, or the error. */
  first: { step: IteratorResult<Response, Response | void> } | { error: unknown } | undefined;
  /** Runs a step in the async context the attempt was started in (a layer's active span). */
  resume: <R>(fn: () => R) => R = (fn) => fn();
  end: ((outcome: Outcome) => void) | undefined = undefined;
}

/**
 * A call with a single response: each attempt's outcome carries it, and nothing reaches the
 * caller until the layers have decided on their outcome.
 */
class UnaryClientCall<Request, Response> extends InterceptedClientCall<Request, Response> {
  /** The call's only step: its response, once the layers have decided on the outcome. */
  result(): Promise<IteratorResult<Response, Response | void>> {
    return this.run().then(this.#result, (error) => {
      this.ended();
      throw error;
    });
  }

  protected started(record: AttemptRecord<Response>): Promise<Outcome> {
    return record.steps.next().then(
      (step) => {
        this.delivered(step.value as Response);
        // A success's trailers went to the caller's onTrailer; no layer reads them.
        return okOutcome(step.value, undefined);
      },
      (error) => this.failed(record, error),
    );
  }

  readonly #result = (outcome: Outcome): IteratorResult<Response, Response | void> => {
    this.ended();
    if (outcome.status === Status.OK) return { done: true, value: outcome.value as Response };
    throw clientErrorOf(this.call.method.path, outcome);
  };
}

/**
 * A call with a response stream: the messages of the attempt that delivers first are relayed to
 * the caller as they come, while the layers wait for the outcome. Attempts race for their first
 * message; the first one to deliver (or to end successfully) commits the call and the others are
 * cancelled.
 */
class StreamingClientCall<Request, Response> extends InterceptedClientCall<Request, Response> {
  #running: Promise<Outcome> | undefined = undefined;
  #outcome: Outcome | undefined = undefined;
  readonly #racing = new Set<AttemptRecord<Response>>();
  #winner: AttemptRecord<Response> | undefined = undefined;
  #stopped = false;
  #wake: (() => void) | undefined = undefined;
  readonly #woken = () => {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  };

  next(): Promise<IteratorResult<Response, Response | void>> {
    if (this.#running === undefined) {
      this.#running = this.run().then(
        (outcome) => {
          this.#outcome = outcome;
          this.#woken();
          return outcome;
        },
        (error: unknown) => {
          this.#outcome = {
            status: Status.UNKNOWN,
            message: String(error),
            trailers: undefined,
            origin: 'proxy',
            committed: this.committed,
            error,
          };
          this.#woken();
          throw error;
        },
      );
      // Its failure reaches the caller through the outcome.
      this.#running.catch(() => {});
    }
    return this.#step();
  }

  throw(error: unknown): Promise<IteratorResult<Response, Response | void>> {
    const winner = this.#winner;
    if (winner === undefined) {
      this.#stop();
      return Promise.reject(error);
    }
    return winner.steps.throw(error);
  }

  return(value: Response | void): Promise<IteratorResult<Response, Response | void>> {
    const winner = this.#winner;
    this.#stop();
    if (winner === undefined) return Promise.resolve({ done: true, value });
    this.#end(winner, STOPPED);
    return winner.steps.return(value);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  protected started(record: AttemptRecord<Response>): Promise<Outcome> {
    const ended = new Promise<Outcome>((resolve) => {
      record.end = resolve;
    });
    if (this.#winner !== undefined || this.#stopped) {
      // The call is committed to another attempt (or over): this one never goes out.
      this.#end(record, SUPERSEDED);
      return ended;
    }
    this.#racing.add(record);
    record.resume = AsyncLocalStorage.snapshot();
    record.steps.next().then(
      (step) => {
        record.first = { step };
        this.#woken();
      },
      (error: unknown) => {
        record.first = { error };
        this.#woken();
      },
    );
    this.#woken();
    return ended;
  }

  /** The caller's next step: a message of the winner, or the call's end. */
  #step(): Promise<IteratorResult<Response, Response | void>> {
    const winner = this.#winner;
    if (winner !== undefined) {
      if (winner.end === undefined) return this.#finish();
      return winner
        .resume(() => winner.steps.next())
        .then(
          (step) => {
            if (!step.done) {
              this.delivered(step.value);
              return step;
            }
            this.#end(winner, okOutcome(step.value, winner.trailers));
            return this.#finish();
          },
          (error: unknown) => {
            this.#end(winner, this.failed(winner, error));
            return this.#finish();
          },
        );
    }
    for (const record of this.#racing) {
      const first = record.first;
      if (first === undefined) continue;
      this.#racing.delete(record);
      if ('error' in first) {
        this.#end(record, this.failed(record, first.error));
        continue;
      }
      this.#commit(record);
      if (first.step.done) {
        this.#end(record, okOutcome(first.step.value, record.trailers));
        return this.#finish();
      }
      this.delivered(first.step.value);
      return Promise.resolve(first.step);
    }
    if (this.#outcome !== undefined) return this.#finish();
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
    }).then(() => this.#step());
  }

  /** Makes `record` the call's attempt: the others are cancelled. */
  #commit(record: AttemptRecord<Response>): void {
    this.#winner = record;
    this.committed = true;
    for (const loser of this.#racing) this.#cancel(loser);
    this.#racing.clear();
  }

  /** Waits for the layers' outcome, then ends the caller's iteration with it. */
  #finish(): Promise<IteratorResult<Response, Response | void>> {
    const outcome = this.#outcome;
    if (outcome === undefined) {
      return new Promise<void>((resolve) => {
        this.#wake = resolve;
      }).then(() => this.#finish());
    }
    this.ended();
    if (outcome.status === Status.OK) return Promise.resolve({ done: true, value: undefined });
    return Promise.reject(clientErrorOf(this.call.method.path, outcome));
  }

  #end(record: AttemptRecord<Response>, outcome: Outcome): void {
    const end = record.end;
    record.end = undefined;
    end?.(outcome);
  }

  #cancel(record: AttemptRecord<Response>, outcome: Outcome = SUPERSEDED): void {
    // Resets its HTTP/2 stream: its server sees the cancellation.
    record.steps.return(undefined).catch(() => {});
    this.#end(record, outcome);
  }

  /** The caller stopped reading: every attempt is cancelled. */
  #stop(): void {
    this.#stopped = true;
    for (const record of this.#racing) this.#cancel(record, STOPPED);
    this.#racing.clear();
    this.ended();
  }
}

/** A nice-grpc client middleware that runs `interceptor` on every call. */
export function clientMiddleware(interceptor: Interceptor): ClientMiddleware {
  return (call, options) => interceptClientCall(call, options, interceptor);
}
