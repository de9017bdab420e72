import { interceptClientCall, interceptServerCall } from '@switchyard/nice-grpc';
import type {
  CallContext,
  CallOptions,
  ClientMiddleware,
  ClientMiddlewareCall,
  ServerMiddleware,
  ServerMiddlewareCall,
} from 'nice-grpc-common';
import type { TracingOptions } from './spans.js';
import {
  type ClientTracingOptions,
  tracingClientInterceptor,
  tracingServerInterceptor,
} from './tracing.js';

/**
 * Server middleware ({@link tracingServerInterceptor}, the layer proxy-kit runs too): a SERVER
 * span per call that continues the caller's W3C trace context, and a call scope whose forwarded
 * `traceparent` is this span, so that calls the handler makes are its children even with no
 * OpenTelemetry context manager installed.
 */
export function tracingServerMiddleware(options: TracingOptions = {}): ServerMiddleware {
  const interceptor = tracingServerInterceptor(options);
  return <Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ) =>
    // No SDK: the call passes untouched, with no adapter around it; a scope opened by other
    // middleware forwards the caller's trace headers as received.
    interceptor.inert()
      ? call.next(call.request, context)
      : interceptServerCall(call, context, interceptor);
}

/**
 * Client middleware ({@link tracingClientInterceptor}): a CLIENT span per call, parented on the
 * active OpenTelemetry span if there is one, else on the trace context of the inbound call being
 * served, and injected into the request metadata as W3C `traceparent`/`tracestate` and `baggage`.
 */
export function tracingClientMiddleware(options: ClientTracingOptions = {}): ClientMiddleware {
  const interceptor = tracingClientInterceptor(options);
  return <Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    callOptions: CallOptions,
  ) =>
    interceptor.inert()
      ? call.next(call.request, callOptions)
      : interceptClientCall(call, callOptions, interceptor);
}
