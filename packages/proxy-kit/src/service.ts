import type { ProxyCall } from './proxy-call.js';

/**
 * The data plane's one abstraction, after tower's `Service`: something that takes a proxied call
 * and says whether it can take one right now.
 *
 * `call` never throws and always ends the call (answering the client itself or handing it on), so
 * a layer has no error path to forget. A service that cannot take calls — an endpoint still
 * connecting, ejected by its breaker, or at its stream limit — is simply not ready; the balancer
 * skips it and admission queues in front of it, without special cases.
 */
export interface Service {
  /** Whether {@link call} can take a call now (tower's `poll_ready`). */
  isReady(): boolean;
  /** Takes the call; only invoked while {@link isReady} is true. */
  call(call: ProxyCall): void;
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
export function stack(...layers: Layer[]): { service(inner: Service): Service } {
  return { service: (inner) => layers.reduceRight((next, layer) => layer(next), inner) };
}

/** Base for layers that change one or two aspects and pass the rest through to `inner`. */
export abstract class LayerService implements Service {
  constructor(protected readonly inner: Service) {}

  isReady(): boolean {
    return this.inner.isReady();
  }

  call(call: ProxyCall): void {
    this.inner.call(call);
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
