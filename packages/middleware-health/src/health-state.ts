/**
 * Health of the server (`''`) and of each named service, as reported by `grpc.health.v1.Health`.
 * The vocabulary is nice-grpc-server-health's, so replacing that package is a one-line change:
 * `healthy` is SERVING, `unhealthy` is NOT_SERVING, `unknown` means "not registered" (Check
 * answers NOT_FOUND, Watch SERVICE_UNKNOWN).
 */
export type HealthStatus = 'healthy' | 'unhealthy' | 'unknown';

/** One status change, delivered to {@link HealthState.subscribe} listeners in order. */
export interface HealthChange {
  /** Fully-qualified service name (`pkg.Service`), or `''` for the whole server. */
  readonly service: string;
  readonly status: HealthStatus;
}

/**
 * Where the server is in its life:
 * - `serving`: statuses are whatever the application set.
 * - `draining`: shutdown has begun; every registered service reports `unhealthy` so balancers
 *   and probes move away, but calls are still served (they keep arriving until every balancer
 *   has noticed), and further `setStatus` calls are ignored.
 * - `stopped`: new calls are refused (see `servingStateMiddleware`) and open Watch streams end.
 */
export type HealthPhase = 'serving' | 'draining' | 'stopped';

/** Registry of serving statuses behind the health service and the serving-state middleware. */
export interface HealthState {
  /** Sets the status of `service` (default `''`, the whole server); `unknown` unregisters it. */
  setStatus(status: HealthStatus, service?: string): void;
  /** Status of `service` (default `''`); `unknown` when it was never registered. */
  getStatus(service?: string): HealthStatus;
  /** Snapshot of every registered service, `''` included. */
  list(): Map<string, 'healthy' | 'unhealthy'>;
  /**
   * Calls `listener` synchronously for every change, in the order the changes were made; setting
   * the status a service already has is not a change. Returns the unsubscribe function.
   */
  subscribe(listener: (change: HealthChange) => void): () => void;
  readonly phase: HealthPhase;
  /** Aborted when the phase becomes `stopped`; Watch streams end on it. */
  readonly stopSignal: AbortSignal;
  /**
   * Enters `draining`: marks every registered service `unhealthy` and ignores later
   * `setStatus` calls, as grpc-go's `Server.Shutdown` and grpc-java's `enterTerminalState` do,
   * so a periodic dependency check cannot flip a draining server back to SERVING. Idempotent.
   */
  drain(): void;
  /** Enters `stopped` (draining first if needed). Idempotent. */
  stop(): void;
  /**
   * Why a new call to `service` must be refused right now, or `undefined` when it may proceed:
   * refused once stopped, or while serving when the service or the whole server is `unhealthy`.
   * While draining, calls proceed — that is the point of draining.
   */
  refusalReason(service: string): string | undefined;
}

/**
 * Creates a {@link HealthState}. The whole server (`''`) starts `healthy`, as in grpc-go,
 * grpc-java and nice-grpc-server-health; named services start `unknown` until set.
 */
export function HealthState(): HealthState {
  const statuses = new Map<string, 'healthy' | 'unhealthy'>([['', 'healthy']]);
  const listeners = new Set<(change: HealthChange) => void>();
  const stopping = new AbortController();
  let phase: HealthPhase = 'serving';

  // Every listener sees every change even if one of them throws: a Watch stream must not miss a
  // transition because another subscriber failed. Failures are collected and thrown to the
  // caller once all changes are made.
  function change(service: string, status: HealthStatus, errors: unknown[]): void {
    const previous = statuses.get(service) ?? 'unknown';
    if (previous === status) return;
    if (status === 'unknown') statuses.delete(service);
    else statuses.set(service, status);
    for (const listener of [...listeners]) {
      try {
        listener({ service, status });
      } catch (error) {
        errors.push(error);
      }
    }
  }

  function rethrow(errors: unknown[]): void {
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'health listeners failed');
  }

  const state: HealthState = {
    setStatus(status, service = '') {
      if (status !== 'healthy' && status !== 'unhealthy' && status !== 'unknown') {
        throw new TypeError(
          `health status must be 'healthy', 'unhealthy' or 'unknown', got ${JSON.stringify(status)}`,
        );
      }
      if (phase !== 'serving') return;
      const errors: unknown[] = [];
      change(service, status, errors);
      rethrow(errors);
    },
    getStatus(service = '') {
      return statuses.get(service) ?? 'unknown';
    },
    list() {
      return new Map(statuses);
    },
    subscribe(listener) {
      // A wrapper per subscription, so subscribing the same function twice yields two
      // independent subscriptions.
      const entry = (change: HealthChange) => listener(change);
      listeners.add(entry);
      return () => listeners.delete(entry);
    },
    get phase() {
      return phase;
    },
    stopSignal: stopping.signal,
    drain() {
      if (phase !== 'serving') return;
      phase = 'draining';
      const errors: unknown[] = [];
      for (const service of [...statuses.keys()]) change(service, 'unhealthy', errors);
      rethrow(errors);
    },
    stop() {
      if (phase === 'stopped') return;
      try {
        state.drain();
      } finally {
        phase = 'stopped';
        stopping.abort();
      }
    },
    refusalReason(service) {
      if (phase === 'stopped') return 'server is shutting down';
      if (phase === 'draining') return undefined;
      if (statuses.get('') === 'unhealthy') return 'server is NOT_SERVING';
      if (statuses.get(service) === 'unhealthy') return `${service} is NOT_SERVING`;
      return undefined;
    },
  };
  return state;
}
