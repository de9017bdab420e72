import { canonicalEndpoints, type Endpoint, sameEndpoints } from './endpoint.js';

/**
 * The full set of endpoints new calls may use. An endpoint absent from it is draining: calls
 * already on it finish, new calls go elsewhere (the proxy does the draining).
 */
export interface DiscoveryUpdate {
  readonly endpoints: readonly Endpoint[];
}

/** A live source of endpoints, whatever the transport that uses them. */
export interface Discovery {
  /**
   * Calls `listener` with every change of the set, sorted by address, and at once (synchronously)
   * with the latest set if there is one. Returns the unsubscribe function.
   */
  subscribe(listener: (update: DiscoveryUpdate) => void): () => void;
  /**
   * A hint that the set may be stale (e.g. a connection to an endpoint failed): re-resolve now.
   * Rate-limited, so a burst of failures costs one lookup; sources that are pushed changes
   * (static, Kubernetes) ignore it.
   */
  refresh(reason: string): void;
  /** Stops resolving and watching; no listener is called afterwards. */
  close(): Promise<void>;
}

/** A lookup, read or watch failed; the last good set stays in force. */
export class DiscoveryError extends Error {
  override readonly name = 'DiscoveryError';
}

/** Options every discovery accepts. */
export interface DiscoveryReportingOptions {
  /**
   * Receives each failure (a lookup, an unreadable file, a watch error, a listener that threw).
   * Default: `console.warn`.
   */
  onError?: (error: DiscoveryError) => void;
}

export function reportToConsole(error: DiscoveryError): void {
  console.warn(`switchyard discovery: ${error.message}`);
}

/** Holds the latest canonical set and tells listeners when, and only when, it changes. */
export class EndpointPublisher {
  #latest: DiscoveryUpdate | undefined;
  readonly #listeners = new Set<{ listener: (update: DiscoveryUpdate) => void }>();
  readonly #onError: (error: DiscoveryError) => void;

  constructor(onError: (error: DiscoveryError) => void) {
    this.#onError = onError;
  }

  publish(endpoints: Iterable<Endpoint>): void {
    const next = canonicalEndpoints(endpoints);
    if (this.#latest && sameEndpoints(this.#latest.endpoints, next)) return;
    const update: DiscoveryUpdate = Object.freeze({ endpoints: Object.freeze(next) });
    this.#latest = update;
    for (const entry of [...this.#listeners]) this.#deliver(entry, update);
  }

  subscribe(listener: (update: DiscoveryUpdate) => void): () => void {
    // A wrapper per call, so subscribing one function twice needs two unsubscribes.
    const entry = { listener };
    this.#listeners.add(entry);
    if (this.#latest) this.#deliver(entry, this.#latest);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  close(): void {
    this.#listeners.clear();
  }

  #deliver(entry: { listener: (update: DiscoveryUpdate) => void }, update: DiscoveryUpdate): void {
    // An unsubscribe by an earlier listener in this round takes effect at once.
    if (!this.#listeners.has(entry)) return;
    try {
      entry.listener(update);
    } catch (cause) {
      // One broken listener must neither stop the others nor kill the resolve loop.
      this.#onError(new DiscoveryError(`a discovery listener threw: ${String(cause)}`, { cause }));
    }
  }
}

/**
 * Decides when the next resolution runs: after the wait its loop asks for, or sooner when
 * `refresh` asks — but never sooner than `minRefreshIntervalMs` after the previous resolution
 * started, so a burst of connection failures costs one lookup instead of one each.
 */
export class ResolutionPacer {
  #lastStart = Number.NEGATIVE_INFINITY;
  #requestedBy: string | undefined;
  #woken = false;
  #rearm: (() => void) | undefined;
  readonly #minRefreshIntervalMs: number;

  constructor(minRefreshIntervalMs: number) {
    this.#minRefreshIntervalMs = minRefreshIntervalMs;
  }

  /** Marks a resolution as starting; returns the refresh reason that caused it, if any. */
  started(): string | undefined {
    this.#lastStart = performance.now();
    const reason = this.#requestedBy;
    this.#requestedBy = undefined;
    this.#woken = false;
    return reason;
  }

  /** Ends the current (or next) wait now, unlimited: for change notifications, not guesses. */
  wake(): void {
    this.#woken = true;
    this.#rearm?.();
  }

  /** Asks for a resolution as soon as the rate limit allows. */
  request(reason: string): void {
    this.#requestedBy ??= reason;
    this.#rearm?.();
  }

  /** Resolves after `ms`, or earlier on a request (rate-limited) or on `signal`. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const due = performance.now() + ms;
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(timer);
        this.#rearm = undefined;
        signal.removeEventListener('abort', finish);
        resolve();
      };
      this.#rearm = () => {
        clearTimeout(timer);
        const at = this.#woken
          ? 0
          : this.#requestedBy === undefined
            ? due
            : Math.min(due, this.#lastStart + this.#minRefreshIntervalMs);
        // Waiting for the next resolution is not work that should keep a process alive.
        timer = setTimeout(finish, Math.max(0, at - performance.now())).unref();
      };
      if (signal.aborted) return finish();
      signal.addEventListener('abort', finish, { once: true });
      this.#rearm();
    });
  }
}

/** What a source that looks its endpoints up again and again gives {@link pacedDiscovery}. */
export interface PacedSource {
  /**
   * One resolution, publishing what it finds; `reason` is the `refresh` that asked for it, if
   * any. Returns how long to wait before the next one.
   */
  resolve(reason: string | undefined, signal: AbortSignal): Promise<number>;
  /** Frees what the source holds (a resolver, a watcher) once the discovery is closed. */
  release(): void;
}

/** A discovery that runs `source.resolve` in a loop paced by `pacer` until it is closed. */
export function pacedDiscovery(
  publisher: EndpointPublisher,
  pacer: ResolutionPacer,
  source: PacedSource,
): Discovery {
  const stopped = new AbortController();
  const loop = async () => {
    while (!stopped.signal.aborted) {
      const wait = await source.resolve(pacer.started(), stopped.signal);
      await pacer.wait(wait, stopped.signal);
    }
  };
  const running = loop();
  return {
    subscribe: (listener) => publisher.subscribe(listener),
    refresh: (reason) => pacer.request(reason),
    close: async () => {
      stopped.abort();
      source.release();
      publisher.close();
      await running;
    },
  };
}
