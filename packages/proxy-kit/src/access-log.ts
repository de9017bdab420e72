import { type Call, compileGlob, type Outcome, Status, statusName } from '@switchyard/core';
import type { Logger } from 'pino';
import type { ProxyCall } from './proxy-call.js';
import { type Layer, LayerService, type Service } from './service.js';

/** Options of the access log: which calls get a line. */
export interface AccessLogOptions {
  /** Share of calls logged, 0–1. Default 1 (every call). */
  sampleRate?: number;
  /** Calls that did not end OK are logged whatever the sample. Default `true`. */
  failuresAlways?: boolean;
  /** Calls slower than this (ms) are logged whatever the sample. Default: none. */
  slowerThanMs?: number;
  /** Only calls to these `package.Service/Method` globs. Default: every method. */
  methods?: readonly string[];
  /** Source of the sampling decisions; injectable so tests pin them. Default `Math.random`. */
  random?: () => number;
}

/**
 * One line per finished call (Envoy's access log, Linkerd's `access_log`), at `info` under
 * `msg: "call"`: method, route, the endpoint of its last attempt, status, duration, attempts,
 * the verified caller and the DATA bytes each way. Below the identity layer, so the caller is
 * known; above the router, so unrouted calls are logged too.
 */
class AccessLog extends LayerService {
  readonly #logger: Logger;
  readonly #sampleRate: number;
  readonly #failuresAlways: boolean;
  readonly #slowerThanMs: number;
  readonly #matches: ((path: string) => boolean) | undefined;
  readonly #random: () => number;

  constructor(inner: Service, logger: Logger, options: AccessLogOptions) {
    super(inner);
    const {
      sampleRate = 1,
      failuresAlways = true,
      slowerThanMs = Number.POSITIVE_INFINITY,
      methods,
      random = Math.random,
    } = options;
    this.#logger = logger;
    this.#sampleRate = sampleRate;
    this.#failuresAlways = failuresAlways;
    this.#slowerThanMs = slowerThanMs;
    const globs = methods?.map((method) => compileGlob(method.replace(/^\//, '')));
    this.#matches = globs && ((path) => globs.some((glob) => glob(path)));
    this.#random = random;
  }

  override call(call: Call): Promise<Outcome> {
    if (this.#matches && !this.#matches(call.method.path.replace(/^\//, ''))) {
      return this.inner.call(call);
    }
    const startedAt = performance.now();
    // Decided up front, so that a sampled-out call costs one random number.
    const sampled = this.#sampleRate >= 1 || this.#random() < this.#sampleRate;
    return this.inner.call(call).then((outcome) => {
      const durationMs = performance.now() - startedAt;
      const failed = outcome.status !== Status.OK;
      if (sampled || (failed && this.#failuresAlways) || durationMs > this.#slowerThanMs) {
        this.#log(call, outcome, durationMs);
      }
      return outcome;
    });
  }

  #log(call: Call, outcome: Outcome, durationMs: number): void {
    const proxied = call.transport as ProxyCall;
    const tried = proxied.triedEndpoints;
    this.#logger.info(
      {
        method: call.method.path,
        route: proxied.routeName,
        endpoint: tried[tried.length - 1],
        status: statusName(outcome.status),
        ...(outcome.status === Status.OK ? {} : { message: outcome.message }),
        durationMs: Math.round(durationMs * 1000) / 1000,
        attempts: tried.length,
        peer: call.peer?.id,
        peerAddress: proxied.peerAddress,
        requestBytes: proxied.requestBytes,
        responseBytes: proxied.responseBytes,
      },
      'call',
    );
  }
}

/** Layer: an access log line per call, sampled and filtered by `options`. */
export function accessLog(logger: Logger, options: AccessLogOptions = {}): Layer {
  return (inner) => new AccessLog(inner, logger, options);
}
