import { ServerError, Status } from 'nice-grpc-common';
import {
  type HealthServiceImplementation,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from './gen/nice/grpc/health/v1/health.js';
import { HealthState, type HealthStatus } from './health-state.js';

/** Options of {@link HealthServiceImpl}. */
export interface HealthServiceOptions {
  /**
   * Most status changes a Watch stream may hold unsent (its client reads slower than the status
   * changes). Every change is sent, in order; a stream that falls further behind ends with
   * RESOURCE_EXHAUSTED instead of silently skipping changes, and its client's next Watch starts
   * from the current status. Default 1000.
   */
  maxWatchBacklog?: number;
  /**
   * Most services `List` returns; with more it fails with RESOURCE_EXHAUSTED, the limit and
   * status gRFC A90 and grpc-go use. Default 100.
   */
  maxListSize?: number;
}

/**
 * What nice-grpc-server-middleware-terminator adds to the call context: Watch opts in, so servers
 * that migrated from nice-grpc-server-health with that middleware keep shutting down cleanly.
 */
export type MaybeTerminatorContext = { abortOnTerminate?(): void } & object;

function toServingStatus(status: HealthStatus): ServingStatus {
  if (status === 'healthy') return ServingStatus.SERVING;
  if (status === 'unhealthy') return ServingStatus.NOT_SERVING;
  return ServingStatus.SERVICE_UNKNOWN;
}

/**
 * The `grpc.health.v1.Health` service (Check, Watch, List) over a {@link HealthState}:
 * `server.add(HealthDefinition, HealthServiceImpl(health))`.
 */
export function HealthServiceImpl(
  state: HealthState = HealthState(),
  { maxWatchBacklog = 1000, maxListSize = 100 }: HealthServiceOptions = {},
): HealthServiceImplementation<MaybeTerminatorContext> {
  return {
    async check({ service }) {
      const status = state.getStatus(service);
      if (status === 'unknown') {
        throw new ServerError(Status.NOT_FOUND, `unknown service ${JSON.stringify(service)}`);
      }
      return { status: toServingStatus(status) };
    },

    async list() {
      const statuses = state.list();
      if (statuses.size > maxListSize) {
        throw new ServerError(
          Status.RESOURCE_EXHAUSTED,
          `${statuses.size} services exceed the health list limit of ${maxListSize}`,
        );
      }
      return {
        statuses: Object.fromEntries(
          [...statuses].map(([service, status]) => [service, { status: toServingStatus(status) }]),
        ),
      };
    },

    async *watch({ service }, context) {
      context.abortOnTerminate?.();
      // Subscribing and reading the current status happen in one synchronous step, so no change
      // can fall between them; the queue is per stream so a slow client delays only itself.
      const backlog = [toServingStatus(state.getStatus(service))];
      let overflowed = false;
      let wake: (() => void) | undefined;
      const unsubscribe = state.subscribe((change) => {
        if (change.service !== service) return;
        if (backlog.length >= maxWatchBacklog) overflowed = true;
        else backlog.push(toServingStatus(change.status));
        wake?.();
      });
      const onEnd = () => wake?.();
      state.stopSignal.addEventListener('abort', onEnd);
      context.signal.addEventListener('abort', onEnd);
      try {
        while (!context.signal.aborted) {
          if (overflowed) {
            throw new ServerError(
              Status.RESOURCE_EXHAUSTED,
              `Watch fell more than ${maxWatchBacklog} status changes behind; watch again`,
            );
          }
          const status = backlog.shift();
          if (status !== undefined) {
            yield { status };
            continue;
          }
          // Server shutdown ends the stream with OK once every queued change is sent; clients
          // then retry with backoff (health.proto) and find the server gone.
          if (state.stopSignal.aborted) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      } finally {
        unsubscribe();
        state.stopSignal.removeEventListener('abort', onEnd);
        context.signal.removeEventListener('abort', onEnd);
      }
    },
  };
}
