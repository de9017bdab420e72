import { setTimeout as sleep } from 'node:timers/promises';
import type { HealthState } from './health-state.js';

/**
 * Steps of a graceful shutdown, in order: `draining` (health reports NOT_SERVING, calls are
 * still served), `closing` (GOAWAY sent, no new streams, running calls finishing), `forcing`
 * (the grace period ran out: remaining calls are cancelled; skipped when everything finished),
 * `closed`.
 */
export type ShutdownPhase = 'draining' | 'closing' | 'forcing' | 'closed';

/** Options of {@link gracefulShutdown}. */
export interface GracefulShutdownOptions {
  /** A nice-grpc server (or anything with its `shutdown`/`forceShutdown`). */
  server: { shutdown(): Promise<void>; forceShutdown(): void };
  /** Health registry to drain and stop; without it the drain period only waits. */
  health?: HealthState;
  /**
   * How long the server keeps serving, while reporting NOT_SERVING, before it stops accepting
   * streams: the time Kubernetes endpoint removal and client-side balancers (health-checking
   * every few seconds) need to stop sending new calls. Default 5000 ms.
   */
  drainMs?: number;
  /**
   * Total time from the trigger until calls still running are cancelled, drain included — the
   * same clock as Kubernetes' `terminationGracePeriodSeconds` (default 30 s), so set it a little
   * below that. Default 25000 ms.
   */
  graceMs?: number;
  /** Signals that start the shutdown. Default `['SIGTERM', 'SIGINT']`. */
  signals?: readonly NodeJS.Signals[];
  /**
   * After a shutdown started by a signal, exit with code 0. Node would otherwise keep running
   * while any other handle is open (a database pool, an interval), and the orchestrator would
   * have to kill it. Default `true`.
   */
  exitProcess?: boolean;
  /** Called as each phase begins, with the milliseconds since the trigger. */
  onPhase?: (phase: ShutdownPhase, elapsedMs: number) => void;
}

/** How a shutdown went. */
export interface ShutdownResult {
  /** The signal name, or the reason given to {@link GracefulShutdown.shutdown}. */
  trigger: string;
  /** Whether calls were still running at the end of the grace period and were cancelled. */
  forced: boolean;
  durationMs: number;
}

/** Handle returned by {@link gracefulShutdown}. */
export interface GracefulShutdown {
  /**
   * Starts the shutdown (or returns the one already under way: every call and signal gets the
   * same promise). Never rejects.
   */
  shutdown(trigger?: string): Promise<ShutdownResult>;
  /** `running` until a shutdown starts, then the current phase. */
  readonly phase: 'running' | ShutdownPhase;
  /** Removes the signal handlers without shutting down. Done automatically once closed. */
  dispose(): void;
}

/**
 * Installs signal handlers that shut the server down gracefully: mark NOT_SERVING and keep
 * serving for `drainMs`, then stop accepting streams (grpc-js `tryShutdown`: the listener
 * closes and every connection gets an HTTP/2 GOAWAY, so clients reconnect elsewhere) while
 * running calls finish, and at `graceMs` cancel whatever is left (`forceShutdown`).
 */
export function gracefulShutdown({
  server,
  health,
  drainMs = 5000,
  graceMs = 25_000,
  signals = ['SIGTERM', 'SIGINT'],
  exitProcess = true,
  onPhase,
}: GracefulShutdownOptions): GracefulShutdown {
  if (!(drainMs >= 0 && graceMs >= drainMs)) {
    throw new RangeError(
      `gracefulShutdown needs 0 <= drainMs <= graceMs, got drainMs=${drainMs} graceMs=${graceMs}`,
    );
  }
  let phase: GracefulShutdown['phase'] = 'running';
  let running: Promise<ShutdownResult> | undefined;

  const onSignal = (signal: NodeJS.Signals) => {
    void handle.shutdown(signal).then(() => {
      if (exitProcess) process.exit(0);
    });
  };
  for (const signal of signals) process.on(signal, onSignal);

  async function run(trigger: string): Promise<ShutdownResult> {
    const started = performance.now();
    const elapsed = () => performance.now() - started;
    const enter = (next: ShutdownPhase) => {
      phase = next;
      warnOnThrow(() => onPhase?.(next, elapsed()));
    };

    enter('draining');
    warnOnThrow(() => health?.drain());
    await sleep(drainMs);

    // Ends Watch streams (they would hold tryShutdown open forever) and refuses calls that still
    // reach us on a connection whose client has not processed the GOAWAY yet.
    warnOnThrow(() => health?.stop());
    enter('closing');
    const closed = server.shutdown().then(
      () => true,
      () => false,
    );
    const graceLeft = new AbortController();
    const inTime = await Promise.race([
      closed,
      sleep(Math.max(0, graceMs - elapsed()), false, { signal: graceLeft.signal }).catch(
        () => false,
      ),
    ]);
    graceLeft.abort();

    if (!inTime) {
      enter('forcing');
      server.forceShutdown();
    }
    handle.dispose();
    enter('closed');
    return { trigger, forced: !inTime, durationMs: elapsed() };
  }

  const handle: GracefulShutdown = {
    shutdown(trigger = 'shutdown()') {
      running ??= run(trigger);
      return running;
    },
    get phase() {
      return phase;
    },
    dispose() {
      for (const signal of signals) process.off(signal, onSignal);
    },
  };
  return handle;
}

// A throwing phase callback or health listener must not leave the server half shut down.
function warnOnThrow(action: () => void): void {
  try {
    action();
  } catch (error) {
    process.emitWarning(error instanceof Error ? error : String(error), 'GracefulShutdownWarning');
  }
}
