import type { Call, Interceptor, Next, Outcome } from '@switchyard/core';

/**
 * The data plane's one abstraction, after tower's `Service`: something that takes a call,
 * completes with its {@link Outcome} — as tower's `call` returns its response future — and says
 * whether it can take one right now.
 *
 * `call` never rejects: a failure is an outcome, so a layer has one way to learn how a call ended
 * and no error path to forget. A service that cannot take calls — an endpoint still connecting,
 * ejected by its breaker, or at its stream limit — is simply not ready; the balancer skips it and
 * admission queues in front of it, without special cases.
 */
export interface Service {
  /** Whether {@link call} can take a call now (tower's `poll_ready`). */
  isReady(): boolean;
  /** Takes the call; only invoked while {@link isReady} is true. */
  call(call: Call): Promise<Outcome>;
  /** Registers a listener told whenever {@link isReady} may have turned true. */
  onReady(listener: () => void): void;
  /** Why the service is not ready, for the status message of calls that could not be placed. */
  notReadyReason(): string;
  /** Stops taking calls; resolves once calls in flight have finished. */
  close(): Promise<void>;
}

/** Wraps a service into another (tower's `Layer`, Finagle's `Filter`). */
export type Layer = (inner: Service) => Service;

/**
 * Composes layers so that the list reads top to bottom like the call's path:
 * `stack(a, b).service(s)` is `a(b(s))` — a call meets `a` first.
 */
export function stack(...layers: readonly Layer[]): { service(inner: Service): Service } {
  return { service: (inner) => layers.reduceRight((next, layer) => layer(next), inner) };
}

/** Base for layers that change one or two aspects and pass the rest through to `inner`. */
export abstract class LayerService implements Service {
  constructor(protected readonly inner: Service) {}

  isReady(): boolean {
    return this.inner.isReady();
  }

  call(call: Call): Promise<Outcome> {
    return this.inner.call(call);
  }

  onReady(listener: () => void): void {
    this.inner.onReady(listener);
  }

  notReadyReason(): string {
    return this.inner.notReadyReason();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * A core interceptor as a layer: the very code the nice-grpc adapter runs in apps (deadline,
 * retry, tracing, metrics, identity…) on the proxy's calls.
 */
export function intercept(interceptor: Interceptor): Layer {
  return (inner) => new InterceptedService(inner, interceptor);
}

class InterceptedService extends LayerService {
  readonly #interceptor: Interceptor;
  readonly #next: Next;

  constructor(inner: Service, interceptor: Interceptor) {
    super(inner);
    this.#interceptor = interceptor;
    this.#next = (call) => inner.call(call);
  }

  override call(call: Call): Promise<Outcome> {
    return this.#interceptor(call, this.#next);
  }
}
