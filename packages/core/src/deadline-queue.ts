/** Something that must happen at a point in time, unless it is taken out of the queue first. */
export interface Expiring {
  /** Epoch milliseconds. */
  readonly at: number;
  expire(): void;
}

// Node clamps longer setTimeout delays to 1 ms (TimeoutOverflowWarning); longer waits re-arm.
const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * Deadlines of calls in flight, on one Node timer for the earliest of them.
 *
 * Nearly every call ends before its deadline, so what a deadline costs is what setting and
 * clearing it costs: a Node timer per call is a `Timeout` object, a list insertion and — when
 * calls run one at a time, each clearing the only timer of its duration — the timer list's
 * creation and a libuv timer start each time (about 4,000 instructions per call, measured with
 * callgrind). Here a call adds itself to a set and deletes itself; the one timer is re-armed only
 * for a deadline earlier than the one it waits for, and when it fires it expires what is due and
 * waits for the earliest of the rest. The timer is unref'd: a call in flight keeps the process
 * alive through its connection, not through its deadline.
 */
export class DeadlineQueue {
  readonly #entries = new Set<Expiring>();
  #timer: NodeJS.Timeout | undefined = undefined;
  /** When the timer fires; `Infinity` while none is armed. */
  #armedAt = Number.POSITIVE_INFINITY;
  readonly #fire = () => this.#expireDue();

  add(entry: Expiring): void {
    this.#entries.add(entry);
    if (entry.at < this.#armedAt) this.#arm(entry.at);
  }

  delete(entry: Expiring): void {
    // The timer stays armed: cheaper to let it fire once for nothing than to re-arm it per call.
    this.#entries.delete(entry);
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(this.#fire, Math.min(Math.max(0, at - Date.now()), MAX_TIMER_DELAY));
    this.#timer.unref();
  }

  #expireDue(): void {
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.#entries) {
      if (entry.at <= now) {
        this.#entries.delete(entry);
        entry.expire();
      } else if (entry.at < next) {
        next = entry.at;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  }
}

/** The process's queue of call deadlines, shared by every deadline layer. */
export const deadlines = new DeadlineQueue();
