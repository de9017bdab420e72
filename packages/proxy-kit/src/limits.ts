import { type Call, type Outcome, proxyOutcome, Status } from '@switchyard/core';
import type { ProxyCall } from './proxy-call.js';
import { type Layer, LayerService, type Service } from './service.js';
import type { CallStats } from './stats.js';

/** Options of {@link countedCalls}. */
export interface CountedCallsOptions {
  /** Calls in flight at once; more fail at once with RESOURCE_EXHAUSTED. Default: no limit. */
  maxConcurrentCalls?: number;
  /** Names the limit in the status message: `route "orders"`, `the proxy`. */
  what: string;
  /** The route's name, told to the call (for the access log). */
  route?: string;
  /** Also counts the calls of one pipeline, for a reload to wait for (the proxy's layer). */
  pipeline?: PipelineCalls;
}

/**
 * The calls in flight on one pipeline — unlike the proxy's count, which a reload keeps — so
 * that a reload can close the old pipeline once the calls it took have finished.
 */
export class PipelineCalls {
  #count = 0;
  #idle: (() => void) | undefined;

  started(): void {
    this.#count++;
  }

  finished(): void {
    if (--this.#count === 0) this.#idle?.();
  }

  /** Resolves once no call is in flight, or after `graceMs`. */
  drained(graceMs: number): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.#idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/**
 * Counts calls into `stats` and, with a limit, turns away the calls beyond it at once with
 * RESOURCE_EXHAUSTED (Envoy's `max_requests` circuit breaker; a gRPC client backs off on it).
 * The count lives in `stats`, which a reload keeps, so calls still finishing on an old pipeline
 * count against the limit of the new one.
 */
class CountedCalls extends LayerService {
  readonly #stats: CallStats;
  readonly #limit: number;
  readonly #refusal: string;
  readonly #route: string | undefined;
  readonly #pipeline: PipelineCalls | undefined;

  constructor(inner: Service, stats: CallStats, options: CountedCallsOptions) {
    super(inner);
    this.#stats = stats;
    this.#limit = options.maxConcurrentCalls ?? Number.POSITIVE_INFINITY;
    this.#refusal = `${options.what} has ${this.#limit} calls in flight, its limit`;
    this.#route = options.route;
    this.#pipeline = options.pipeline;
  }

  override call(call: Call): Promise<Outcome> {
    if (this.#route !== undefined) (call.transport as ProxyCall).routeName = this.#route;
    const stats = this.#stats;
    const startedAt = stats.start();
    if (stats.inFlight > this.#limit) {
      stats.finish(startedAt, Status.RESOURCE_EXHAUSTED);
      return Promise.resolve(proxyOutcome(Status.RESOURCE_EXHAUSTED, this.#refusal));
    }
    const pipeline = this.#pipeline;
    pipeline?.started();
    return this.inner.call(call).then((outcome) => {
      stats.finish(startedAt, outcome.status);
      pipeline?.finished();
      return outcome;
    });
  }
}

/** Layer: counts the calls through it into `stats`, turning away those beyond the limit. */
export function countedCalls(stats: CallStats, options: CountedCallsOptions): Layer {
  return (inner) => new CountedCalls(inner, stats, options);
}

/**
 * Ends a call whose client sends a request message larger than `maxBytes` with
 * RESOURCE_EXHAUSTED, as a gRPC server does past its `maxReceiveMessageLength`: the length is
 * read from the message's 5-byte prefix, before its bytes arrive, and the attempts upstream are
 * cancelled. Only the prefixes are read (no message is buffered), on routes with a limit only.
 */
class RequestSizeLimit extends LayerService {
  readonly #maxBytes: number;

  constructor(inner: Service, maxBytes: number) {
    super(inner);
    this.#maxBytes = maxBytes;
  }

  override call(call: Call): Promise<Outcome> {
    const cut = new AbortController();
    const signal = call.signal ? AbortSignal.any([call.signal, cut.signal]) : cut.signal;
    const maxBytes = this.#maxBytes;
    return new Promise((resolve) => {
      (call.transport as ProxyCall).limitRequestMessages(maxBytes, (size) =>
        // After the relay step that read the prefix: the call's state is settled by then.
        queueMicrotask(() => {
          resolve(
            proxyOutcome(
              Status.RESOURCE_EXHAUSTED,
              `request message of ${size} bytes exceeds the proxy's limit of ${maxBytes}`,
            ),
          );
          cut.abort();
        }),
      );
      this.inner.call({ ...call, signal }).then(resolve);
    });
  }
}

/** Layer: request messages above `maxBytes` end the call with RESOURCE_EXHAUSTED. */
export function requestSizeLimit(maxBytes: number): Layer {
  return (inner) => new RequestSizeLimit(inner, maxBytes);
}
