import { type Call, type Outcome, proxyOutcome, Status } from '@switchyard/core';
import { type Layer, LayerService, type Service } from './service.js';

/** Options of {@link admission}. */
export interface AdmissionOptions {
  /** Calls that may wait for a ready endpoint; beyond it calls fail at once. Default 10,000. */
  queueCapacity?: number;
  /**
   * After this long without a ready endpoint, queued calls fail with UNAVAILABLE and new ones
   * fail at once until an endpoint is ready again. Default 3 s (Linkerd).
   */
  failfastMs?: number;
}

/** A call waiting for a ready endpoint, and how to complete it. */
interface Waiting {
  readonly call: Call;
  readonly resolve: (outcome: Outcome | Promise<Outcome>) => void;
}

/**
 * A bounded queue in front of the balancer, with Linkerd's failfast: calls wait while no endpoint
 * is ready (all connecting, ejected or at their stream limits), but not for ever and not without
 * bound.
 */
class Admission extends LayerService {
  readonly #capacity: number;
  readonly #failfastMs: number;
  readonly #queue: Waiting[] = [];
  readonly #queuedAt: number[] = [];
  #failfast = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(inner: Service, { queueCapacity = 10_000, failfastMs = 3_000 }: AdmissionOptions) {
    super(inner);
    this.#capacity = queueCapacity;
    this.#failfastMs = failfastMs;
    inner.onReady(() => this.#dispatchQueued());
  }

  override isReady(): boolean {
    return true; // admission always takes the call: it queues or fails it
  }

  override call(call: Call): Promise<Outcome> {
    if (this.#queue.length === 0 && this.inner.isReady()) {
      this.#failfast = false;
      return this.inner.call(call);
    }
    if (this.#failfast) {
      return Promise.resolve(
        proxyOutcome(Status.UNAVAILABLE, `no ready endpoint: ${this.inner.notReadyReason()}`),
      );
    }
    if (this.#queue.length >= this.#capacity) {
      return Promise.resolve(
        proxyOutcome(
          Status.UNAVAILABLE,
          `proxy queue full (${this.#capacity} calls waiting for a ready endpoint)`,
        ),
      );
    }
    return new Promise((resolve) => {
      this.#queue.push({ call, resolve });
      this.#queuedAt.push(performance.now());
      if (this.#timer === undefined) this.#arm(this.#failfastMs);
    });
  }

  override async close(): Promise<void> {
    this.#failAll('proxy is shutting down');
    await this.inner.close();
  }

  #dispatchQueued(): void {
    const queue = this.#queue;
    while (queue.length > 0 && this.inner.isReady()) {
      this.#failfast = false;
      const { call, resolve } = queue.shift()!;
      this.#queuedAt.shift();
      // A call cancelled while it waited takes no endpoint's turn.
      if (call.signal?.aborted)
        resolve({ ...proxyOutcome(Status.CANCELLED, 'cancelled while queued'), origin: 'client' });
      else resolve(this.inner.call(call));
    }
    if (queue.length === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#expire(), ms);
  }

  #expire(): void {
    this.#timer = undefined;
    const waited = performance.now() - (this.#queuedAt[0] ?? 0);
    if (this.#queue.length === 0) return;
    if (waited < this.#failfastMs) {
      this.#arm(this.#failfastMs - waited);
      return;
    }
    this.#failfast = true;
    this.#failAll(
      `no ready endpoint within ${this.#failfastMs} ms: ${this.inner.notReadyReason()}`,
    );
  }

  #failAll(message: string): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const waiting = this.#queue.splice(0);
    this.#queuedAt.length = 0;
    for (const { resolve } of waiting) resolve(proxyOutcome(Status.UNAVAILABLE, message));
  }
}

/** Layer: bounded queue with failfast in front of the balancer. */
export function admission(options: AdmissionOptions = {}): Layer {
  return (inner) => new Admission(inner, options);
}
