import { interceptClientCall, interceptServerCall } from '@switchyard/nice-grpc';
import type { ClientMiddleware, ServerMiddleware } from 'nice-grpc-common';
import {
  type ClientMetricsOptions,
  type MetricsOptions,
  metricsClientInterceptor,
  metricsServerInterceptor,
} from './middleware.js';

/**
 * Server middleware recording, per method: call duration by status, calls started and in
 * flight, messages (and optionally bytes) per streaming call. Install it first (outermost) so
 * that it times the whole call and sees calls that inner middleware reject.
 */
export function metricsServerMiddleware(options: MetricsOptions = {}): ServerMiddleware {
  const interceptor = metricsServerInterceptor(options);
  if (interceptor === undefined) return (call, context) => call.next(call.request, context);
  return (call, context) => interceptServerCall(call, context, interceptor);
}

/**
 * Client middleware recording, per method: call duration by status, calls started and in
 * flight, messages (and optionally bytes) per streaming call. Also counts retries, hedges and
 * retry-budget refusals reported by middleware-retry. On a client factory the last `use` runs
 * first: `use` it last to measure calls as the application sees them (retries included), or
 * before middleware-retry to measure each attempt.
 */
export function metricsClientMiddleware(options: ClientMetricsOptions = {}): ClientMiddleware {
  const interceptor = metricsClientInterceptor(options);
  if (interceptor === undefined) return (call, callOptions) => call.next(call.request, callOptions);
  return (call, callOptions) => interceptClientCall(call, callOptions, interceptor);
}
