import { type BackoffOptions, exponentialBackoff, Status, statusName } from '@switchyard/core';
import { GrpcError } from '@switchyard/nice-grpc';
import { delay, isAbortError } from 'abort-controller-x';
import {
  type Channel,
  type ChannelCredentials,
  type ChannelOptions,
  createChannel,
  createClient,
} from 'nice-grpc';
import {
  HealthDefinition,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from './gen/nice/grpc/health/v1/health.js';

/** A serving status as `grpc.health.v1` names it on the wire. */
export type ServingStatusName = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** A change of a watched target's status. */
export interface HealthTransition {
  readonly from: ServingStatusName;
  readonly to: ServingStatusName;
  /** What was observed, e.g. `Check timed out after 1000 ms` or `Watch reported NOT_SERVING`. */
  readonly reason: string;
  /**
   * How long the probe that observed it took: a Check's round trip (the timeout when it
   * expired), or a Watch stream's time to its first message; `undefined` for a change pushed on
   * an open Watch stream or a failed stream.
   */
  readonly latencyMs: number | undefined;
  /** Which call observed it. */
  readonly source: 'check' | 'watch';
  /** `Date.now()` when it was observed. */
  readonly at: number;
}

/** Options of {@link watchHealth}: give either `address` or `channel`. */
export interface WatchHealthOptions {
  /**
   * Target `host:port` (or `http(s)://host:port`). The client opens its own channel, whose
   * reconnect backoff is capped at `intervalMs` so a backend that comes back is seen within an
   * interval, and closes it on `close()`.
   */
  address?: string;
  /** An existing channel to check through (it then checks that very connection); not closed. */
  channel?: Channel;
  /** Credentials for `address`. Default insecure (or TLS for `https://`). */
  credentials?: ChannelCredentials;
  /** grpc-js options for the channel opened for `address`. */
  channelOptions?: ChannelOptions;
  /** Service to check; `''` (default) is the whole server. */
  service?: string;
  /** Time between Checks (liveness probes, or the status source without Watch). Default 5000 ms. */
  intervalMs?: number;
  /** Deadline of each Check; no answer by then means NOT_SERVING. Default 1000 ms. */
  timeoutMs?: number;
  /** Use Watch for instant status changes; `false` polls Check only. Default `true`. */
  watch?: boolean;
  /**
   * Delays between Watch attempts after a stream fails or ends. Default gRFC A6's connection
   * backoff: 1 s growing 1.6× to 30 s, ±20 % jitter.
   */
  backoff?: BackoffOptions;
  /** Called on every status change, in order. */
  onChange?: (transition: HealthTransition) => void;
  /** Aborting it closes the watcher. */
  signal?: AbortSignal;
}

/** A running health watcher. */
export interface HealthWatch {
  /** Last known status; `UNKNOWN` until the target first answers. */
  readonly status: ServingStatusName;
  /** `status === 'SERVING'`. */
  readonly healthy: boolean;
  /** The last transition, `undefined` before the first answer. */
  readonly lastTransition: HealthTransition | undefined;
  /** `check` once the target answered Watch with UNIMPLEMENTED (or with `watch: false`). */
  readonly mode: 'watch' | 'check';
  /** Stops probing and closes the channel it opened. Idempotent. */
  close(): void;
}

const STATUS_NAMES: Record<number, ServingStatusName> = {
  [ServingStatus.UNKNOWN]: 'UNKNOWN',
  [ServingStatus.SERVING]: 'SERVING',
  [ServingStatus.NOT_SERVING]: 'NOT_SERVING',
  [ServingStatus.SERVICE_UNKNOWN]: 'SERVICE_UNKNOWN',
};

/** Observation of one Check: the status it implies, why, and whether the target answered. */
interface CheckOutcome {
  status: ServingStatusName;
  reason: string;
  latencyMs: number;
  answered: boolean;
}

/**
 * Watches the health of one target the way the proxy's active health checking needs: the
 * `Watch` stream pushes status changes as they happen, and a `Check` every `intervalMs` with a
 * `timeoutMs` deadline proves the target still answers — a hung process keeps its TCP
 * connection and Watch stream open, so only a probe with a deadline notices it. When the target
 * answers Watch with UNIMPLEMENTED, the Checks alone carry the status (health.proto: do not
 * retry Watch then). A Watch stream that fails or ends is followed by an immediate Check and
 * reopened with backoff.
 *
 * While a Watch stream is open it is the source of statuses; a Check then only flips the status
 * when it fails (NOT_SERVING) or is the first success after a failure, so a Check answered
 * between two Watch messages cannot reorder the changes the stream delivers.
 */
export function watchHealth({
  address,
  channel,
  credentials,
  channelOptions,
  service = '',
  intervalMs = 5000,
  timeoutMs = 1000,
  watch = true,
  backoff: backoffOptions,
  onChange,
  signal,
}: WatchHealthOptions): HealthWatch {
  if ((address === undefined) === (channel === undefined)) {
    throw new TypeError('watchHealth needs exactly one of `address` or `channel`');
  }
  for (const [key, value] of [
    ['intervalMs', intervalMs],
    ['timeoutMs', timeoutMs],
  ] as const) {
    if (!(value > 0 && Number.isFinite(value))) {
      throw new RangeError(`watchHealth: ${key} must be a positive number of ms, got ${value}`);
    }
  }
  const ownChannel =
    channel === undefined
      ? createChannel(address as string, credentials, {
          // grpc-js backs reconnects off up to 120 s; a health checker must retry at least once
          // per interval or it would miss a backend's return for minutes.
          'grpc.initial_reconnect_backoff_ms': Math.min(1000, intervalMs),
          'grpc.max_reconnect_backoff_ms': intervalMs,
          ...channelOptions,
        })
      : undefined;
  const client = createClient(HealthDefinition, channel ?? (ownChannel as Channel));
  const backoff = exponentialBackoff({
    baseMs: 1000,
    maxMs: 30_000,
    multiplier: 1.6,
    jitter: 0.2,
    ...backoffOptions,
  });
  const closing = new AbortController();

  let status: ServingStatusName = 'UNKNOWN';
  let lastTransition: HealthTransition | undefined;
  let mode: HealthWatch['mode'] = watch ? 'watch' : 'check';
  let watchOpen = false;
  let lastWatchMessageAt = Number.NEGATIVE_INFINITY;
  let downByFailedCheck = false;

  function observe(
    next: ServingStatusName,
    reason: string,
    latencyMs: number | undefined,
    source: HealthTransition['source'],
  ): void {
    if (next === status || closing.signal.aborted) return;
    lastTransition = { from: status, to: next, reason, latencyMs, source, at: Date.now() };
    status = next;
    const transition = lastTransition;
    // A failing callback must not stop the health checking that other code relies on.
    try {
      onChange?.(transition);
    } catch (error) {
      process.emitWarning(error instanceof Error ? error : String(error), 'HealthWatchWarning');
    }
  }

  async function check(): Promise<CheckOutcome> {
    const sent = performance.now();
    const latency = () => performance.now() - sent;
    // nice-grpc has no per-call deadline option; an aborted call is cancelled (RST_STREAM), which
    // frees the server the same way an expired deadline would.
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      const response = await client.check(
        { service },
        { signal: AbortSignal.any([closing.signal, timeout]) },
      );
      const answer = STATUS_NAMES[response.status] ?? 'UNKNOWN';
      return {
        status: answer,
        reason: `Check answered ${answer}`,
        latencyMs: latency(),
        answered: true,
      };
    } catch (error) {
      if (closing.signal.aborted) throw error;
      const latencyMs = latency();
      if (timeout.aborted) {
        return {
          status: 'NOT_SERVING',
          reason: `Check timed out after ${timeoutMs} ms`,
          latencyMs,
          answered: false,
        };
      }
      const { code, details } = GrpcError.from(error);
      if (code === Status.NOT_FOUND) {
        return {
          status: 'SERVICE_UNKNOWN',
          reason: `Check: ${details}`,
          latencyMs,
          answered: true,
        };
      }
      return {
        status: 'NOT_SERVING',
        reason: `Check failed: ${statusName(code)}: ${details}`,
        latencyMs,
        answered: false,
      };
    }
  }

  // Waits `ms` between Checks; the Watch stream ending cuts the wait short, since Checks are then
  // the only source of statuses.
  let wakeChecks: AbortController | undefined;
  async function pauseChecks(ms: number): Promise<void> {
    const wake = new AbortController();
    wakeChecks = wake;
    try {
      await delay(AbortSignal.any([closing.signal, wake.signal]), ms);
    } catch (error) {
      if (closing.signal.aborted) throw error;
    } finally {
      wakeChecks = undefined;
    }
  }

  async function checkLoop(): Promise<void> {
    // With Watch the stream brings the first status; the first liveness Check comes an interval on.
    if (mode === 'watch') await pauseChecks(intervalMs);
    for (;;) {
      const sent = performance.now();
      const outcome = await check();
      // A Watch message that arrived meanwhile is newer than this Check's answer.
      if (!(watchOpen && lastWatchMessageAt > sent)) {
        if (!outcome.answered) {
          downByFailedCheck = true;
          observe(outcome.status, outcome.reason, outcome.latencyMs, 'check');
        } else if (!watchOpen || downByFailedCheck) {
          downByFailedCheck = false;
          observe(outcome.status, outcome.reason, outcome.latencyMs, 'check');
        }
      }
      await pauseChecks(Math.max(0, sent + intervalMs - performance.now()));
    }
  }

  async function watchLoop(): Promise<void> {
    let attempt = 0;
    for (;;) {
      const opened = performance.now();
      try {
        for await (const message of client.watch({ service }, { signal: closing.signal })) {
          const answer = STATUS_NAMES[message.status] ?? 'UNKNOWN';
          const first = !watchOpen;
          watchOpen = true;
          downByFailedCheck = false;
          lastWatchMessageAt = performance.now();
          attempt = 0;
          observe(
            answer,
            `Watch reported ${answer}`,
            first ? lastWatchMessageAt - opened : undefined,
            'watch',
          );
        }
      } catch (error) {
        if (isAbortError(error)) throw error;
        if (GrpcError.from(error).code === Status.UNIMPLEMENTED) {
          mode = 'check';
          return;
        }
      } finally {
        watchOpen = false;
        // Failed or ended by the server, the stream no longer speaks for the target: a Check
        // right away decides the status until the stream is back. A broken stream alone does
        // not prove the target down (a proxy may cut long streams), so it sets no status itself.
        wakeChecks?.abort();
      }
      await delay(closing.signal, backoff(attempt));
      attempt++;
    }
  }

  const handle: HealthWatch = {
    get status() {
      return status;
    },
    get healthy() {
      return status === 'SERVING';
    },
    get lastTransition() {
      return lastTransition;
    },
    get mode() {
      return mode;
    },
    close() {
      if (closing.signal.aborted) return;
      closing.abort();
      signal?.removeEventListener('abort', handle.close);
      ownChannel?.close();
    },
  };

  const settle = (loop: Promise<void>) =>
    loop.catch((error: unknown) => {
      if (!isAbortError(error)) {
        process.emitWarning(error instanceof Error ? error : String(error), 'HealthWatchWarning');
      }
    });
  if (signal?.aborted) {
    handle.close();
    return handle;
  }
  signal?.addEventListener('abort', handle.close);
  void settle(checkLoop());
  if (watch) void settle(watchLoop());
  return handle;
}
