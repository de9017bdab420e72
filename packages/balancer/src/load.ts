/**
 * The load record a balancer keeps for one endpoint. The transport tells it when a call is sent
 * and when the call's response begins; the balancer reads {@link Load.cost} to compare endpoints.
 *
 * A call is pending from {@link Load.start} until {@link Load.settle}: settle on the first
 * response DATA frame (or at the end of a call that had none), not at the end of the call, so a
 * long-lived stream counts as one round trip rather than as load for its whole life
 * (linkerd2-proxy's `PendingUntilFirstData`).
 */
export interface Load {
  /** Calls started and not yet settled. */
  readonly pending: number;
  /** Cost of sending one more call to this endpoint; lower is better. */
  cost(): number;
  /** Records a call sent now; returns its start time, to hand back to {@link settle}. */
  start(): number;
  /** Records that the response of the call started at `startedAt` began (or the call ended). */
  settle(startedAt: number): void;
  /**
   * Takes back a call counted by {@link start} that was never sent (a pick the transport
   * dropped): no longer pending, and no sample.
   */
  abandon(): void;
}

/** Anything a balancer can choose: it only needs the endpoint's load record. */
export interface Balanceable {
  readonly load: Load;
}

/** Monotonic clock in milliseconds; injectable so tests control time. */
export type Clock = () => number;

/** Source of randomness in [0, 1); injectable so tests pin the choices. */
export type Random = () => number;

/** `performance.now`: monotonic, unaffected by wall-clock steps. */
export const monotonicClock: Clock = () => performance.now();

/**
 * Counts pending calls and nothing else: the cost is the number of calls awaiting a response
 * (Envoy's and grpc-go's least-request measure).
 */
export class PendingRequests implements Load {
  pending = 0;
  readonly #now: Clock;

  constructor(now: Clock = monotonicClock) {
    this.#now = now;
  }

  cost(): number {
    return this.pending;
  }

  start(): number {
    this.pending++;
    return this.#now();
  }

  settle(_startedAt: number): void {
    if (this.pending > 0) this.pending--;
  }

  abandon(): void {
    if (this.pending > 0) this.pending--;
  }
}
