import { ServerError, type ServerMiddleware, Status } from 'nice-grpc-common';
import { HealthDefinition } from './gen/nice/grpc/health/v1/health.js';
import type { HealthState } from './health-state.js';

/** Options of {@link servingStateMiddleware}. */
export interface ServingStateOptions {
  /**
   * Status refused calls fail with. UNAVAILABLE tells clients and balancers to go elsewhere;
   * it is the code gRPC retry policies and transparent retries treat as safe to retry.
   */
  code?: Status;
  /**
   * Fully-qualified services that are always served, whatever the state. The health service
   * must stay reachable, or nobody could see that the server is not serving.
   */
  exemptServices?: Iterable<string>;
}

/**
 * Server middleware that refuses new calls while their service (or the whole server) is
 * `unhealthy`, and every call once shutdown has stopped the server (see
 * {@link HealthState.refusalReason}). Calls already running are not affected.
 */
export function servingStateMiddleware(
  health: HealthState,
  {
    code = Status.UNAVAILABLE,
    exemptServices = [HealthDefinition.fullName],
  }: ServingStateOptions = {},
): ServerMiddleware {
  const exempt = new Set(exemptServices);
  return async function* servingState(call, context) {
    // The path is `/package.Service/Method` (PROTOCOL-HTTP2); health names services the same way.
    const service = call.method.path.slice(1, call.method.path.lastIndexOf('/'));
    if (!exempt.has(service)) {
      const reason = health.refusalReason(service);
      if (reason !== undefined) throw new ServerError(code, reason);
    }
    return yield* call.next(call.request, context);
  };
}
