/**
 * Middleware that only needs to act when a call ends — clear a timer, replace an error — would
 * be written as an async generator around `yield* call.next(…)`. On the hot path that generator
 * costs every call a chain of promises and microtask hops per step (more again while an
 * AsyncLocalStorage is active). The helper here gives the same behaviour as a plain async
 * iterator: one `then` per step.
 */

/** How steps ended: ran to their end, threw, or the consumer stopped early (`return()`). */
export type StepsEnd = 'done' | 'failed' | 'stopped';

/**
 * `steps`, with `settle` called exactly once when they end: `'done'`, `'failed'` (with the
 * error they threw) or `'stopped'` early by the consumer. Whatever `settle` throws replaces the
 * outcome, as a `throw` in a generator's `finally` block would.
 */
export function settleSteps<T, R>(
  steps: AsyncGenerator<T, R, undefined>,
  settle: (end: StepsEnd, error: unknown) => void,
): AsyncGenerator<T, R, undefined> {
  return new SettlingSteps(steps, settle) as unknown as AsyncGenerator<T, R, undefined>;
}

/**
 * Steps that `start` creates at their first iteration, not before: nice-grpc starts a client
 * call when it is first iterated, and middleware that reads the clock (deadlines) must too.
 */
export function lazySteps<T, R>(
  start: () => AsyncGenerator<T, R, undefined>,
): AsyncGenerator<T, R, undefined> {
  return new LazySteps(start) as unknown as AsyncGenerator<T, R, undefined>;
}

// Classes rather than object literals: one shared shape and prototype methods, so creating one
// per call is a single small allocation.

class SettlingSteps<T, R> {
  private settled = false;
  private readonly onStep = (step: IteratorResult<T, R>) => {
    if (step.done) this.end('done', undefined);
    return step;
  };
  private readonly onStopped = (step: IteratorResult<T, R>) => {
    this.end('stopped', undefined);
    return step;
  };
  private readonly onError = (error: unknown): never => {
    this.end('failed', error);
    throw error;
  };

  constructor(
    private readonly steps: AsyncGenerator<T, R, undefined>,
    private readonly settle: (end: StepsEnd, error: unknown) => void,
  ) {}

  private end(end: StepsEnd, error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(end, error);
  }

  next(): Promise<IteratorResult<T, R>> {
    return this.steps.next().then(this.onStep, this.onError);
  }

  throw(error: unknown): Promise<IteratorResult<T, R>> {
    return this.steps.throw(error).then(this.onStep, this.onError);
  }

  return(value: R): Promise<IteratorResult<T, R>> {
    return this.steps.return(value).then(this.onStopped, this.onError);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

class LazySteps<T, R> {
  private steps: AsyncGenerator<T, R, undefined> | undefined;

  constructor(private readonly start: () => AsyncGenerator<T, R, undefined>) {}

  next(): Promise<IteratorResult<T, R>> {
    try {
      this.steps ??= this.start();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.steps.next();
  }

  // A consumer that stops before the first step never starts the call, as with a generator.
  throw(error: unknown): Promise<IteratorResult<T, R>> {
    return this.steps ? this.steps.throw(error) : Promise.reject(error);
  }

  return(value: R): Promise<IteratorResult<T, R>> {
    return this.steps ? this.steps.return(value) : Promise.resolve({ done: true, value });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * `source`'s steps, with `onStep` seeing each one as it resolves — every message, then the
 * final `done` step with the return value. For middleware that counts messages or records an
 * event per message: one `then` per message instead of a generator's promise chain. `source`
 * is iterated only when the steps are (a request stream must not be read ahead of the call).
 */
export function tapSteps<T, R>(
  source: AsyncIterable<T> | AsyncGenerator<T, R, undefined>,
  onStep: (step: IteratorResult<T, R>) => void,
): AsyncGenerator<T, R, undefined> {
  return new TappedSteps(source, onStep) as unknown as AsyncGenerator<T, R, undefined>;
}

class TappedSteps<T, R> {
  private iterator: AsyncIterator<T, R, undefined> | undefined;
  private readonly onResolved = (step: IteratorResult<T, R>) => {
    this.onStep(step);
    return step;
  };

  constructor(
    private readonly source: AsyncIterable<T> | AsyncGenerator<T, R, undefined>,
    private readonly onStep: (step: IteratorResult<T, R>) => void,
  ) {}

  private started(): AsyncIterator<T, R, undefined> {
    this.iterator ??= this.source[Symbol.asyncIterator]() as AsyncIterator<T, R, undefined>;
    return this.iterator;
  }

  next(): Promise<IteratorResult<T, R>> {
    try {
      return this.started().next().then(this.onResolved);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // Plain async iterators may lack return() and throw(); a generator's would end it.
  throw(error: unknown): Promise<IteratorResult<T, R>> {
    const iterator = this.iterator;
    return iterator?.throw ? iterator.throw(error) : Promise.reject(error);
  }

  return(value: R): Promise<IteratorResult<T, R>> {
    const iterator = this.iterator;
    return iterator?.return
      ? iterator.return(value)
      : Promise.resolve({ done: true, value } as IteratorResult<T, R>);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * The steps of a call with a single response, as nice-grpc reads them: one `next` that resolves
 * to the end of the call (`run`'s result), after which the steps are over.
 */
export class SingleStep<T, R> {
  #settled = false;

  constructor(private readonly run: () => Promise<IteratorResult<T, R>>) {}

  next(): Promise<IteratorResult<T, R>> {
    // nice-grpc reads a unary call's steps once; a second read finds it over.
    if (this.#settled) return Promise.resolve({ done: true, value: undefined as R });
    this.#settled = true;
    return this.run();
  }

  throw(error: unknown): Promise<IteratorResult<T, R>> {
    this.#settled = true;
    return Promise.reject(error);
  }

  return(value: R): Promise<IteratorResult<T, R>> {
    this.#settled = true;
    return Promise.resolve({ done: true, value });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
