import {
  type Attributes,
  context as contextApi,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  trace,
} from '@opentelemetry/api';
import { parseGrpcTarget, Status } from '@switchyard/core';
import {
  currentCallScope,
  GrpcError,
  type StepsEnd,
  servedStatus,
  serveInCallScope,
  settleSteps,
} from '@switchyard/nice-grpc';
import {
  type CallContext,
  type CallOptions,
  type ClientMiddleware,
  type ClientMiddlewareCall,
  Metadata,
  type ServerMiddleware,
  type ServerMiddlewareCall,
} from 'nice-grpc-common';
import {
  bindContext,
  endSpan,
  messageEvents,
  metadataGetter,
  metadataSetter,
  type SpanFactory,
  spanFactory,
  type TracingOptions,
} from './spans.js';

/** Options of {@link tracingClientMiddleware}. */
export interface ClientTracingOptions extends TracingOptions {
  /**
   * The channel target the clients call (`dns:///orders:50051`), reported as `server.address`
   * and `server.port`. Default: none (a client middleware does not see its channel).
   */
  target?: string;
}

// Trace-context headers the server span replaces in the scope; baggage passes on as received.
const TRACE_CONTEXT_HEADERS = ['traceparent', 'tracestate'];

/**
 * Server middleware: a SERVER span per call that continues the caller's W3C trace context (and
 * baggage) from the request metadata, and a call scope whose forwarded `traceparent` is this
 * span, so that calls the handler makes are its children even with no OpenTelemetry context
 * manager installed. Install core's `callScopeServerMiddleware` (if used) before this one.
 */
export function tracingServerMiddleware(options: TracingOptions = {}): ServerMiddleware {
  const factory = spanFactory(SpanKind.SERVER, options, undefined);
  const { tracer, propagator } = factory;
  let lastPeer = '';
  let lastPeerAttributes: Attributes = {};
  return <Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ) => {
    // No SDK: spans would be no-ops and no context could be extracted. The call passes
    // untouched; a scope opened by other middleware forwards the caller's trace headers as
    // received.
    if (factory.inert()) return call.next(call.request, context);
    const method = factory.method(call.method);
    const parent = propagator.extract(ROOT_CONTEXT, context.metadata, metadataGetter);
    const span = tracer.startSpan(method.name, method.options, parent);
    if (context.peer !== lastPeer) {
      lastPeer = context.peer;
      lastPeerAttributes = peerAttributes(context.peer);
    }
    span.setAttributes(lastPeerAttributes);
    const active = trace.setSpan(parent, span);

    // What calls made by the handler pass on: the scope's forwarded headers (or, when this
    // middleware opens the scope, the default ones) with this span as the trace context.
    const scope = currentCallScope();
    let forwardMetadata: Metadata;
    if (scope?.inbound === context.metadata) {
      forwardMetadata = Metadata(scope.forwardMetadata);
      for (const header of TRACE_CONTEXT_HEADERS) forwardMetadata.delete(header);
    } else {
      forwardMetadata = Metadata();
      const baggage = context.metadata.getAll('baggage');
      if (baggage.length > 0) forwardMetadata.set('baggage', baggage as string[]);
    }
    propagator.inject(active, forwardMetadata, metadataSetter);

    return bindContext(
      active,
      serveInCallScope(call.method.path, context, { forwardMetadata }, () =>
        traceServerCall(span, factory, call, context),
      ),
    );
  };
}

function traceServerCall<Request, Response>(
  span: Span,
  factory: SpanFactory,
  call: ServerMiddlewareCall<Request, Response>,
  context: CallContext,
): AsyncGenerator<Response, Response | void, undefined> {
  const end = (how: StepsEnd, error: unknown) =>
    endSpan(span, factory, SpanKind.SERVER, servedStatus(context, how === 'failed', error), error);
  if (!factory.messageEvents || (!call.requestStream && !call.responseStream)) {
    // Nothing to see per message: the span only has to end with the call, which a plain
    // iterator does for one `then` per step instead of a generator's promise chain.
    return settleSteps<Response, Response | void>(call.next(call.request, context), end);
  }
  const request = call.requestStream ? messageEvents(call.request, span, 'RECEIVED') : call.request;
  const responses = call.responseStream
    ? messageEvents(call.next(request, context), span, 'SENT')
    : call.next(request, context);
  return settleSteps<Response, Response | void>(responses, end);
}

/**
 * Client middleware: a CLIENT span per call, parented on the active OpenTelemetry span if there
 * is one, else on the trace context of the inbound call being served (core's call scope), and
 * injected into the request metadata as W3C `traceparent`/`tracestate` and `baggage`.
 */
export function tracingClientMiddleware(options: ClientTracingOptions = {}): ClientMiddleware {
  const endpoint = options.target === undefined ? undefined : parseGrpcTarget(options.target);
  const factory = spanFactory(SpanKind.CLIENT, options, endpoint);
  const { tracer, propagator } = factory;
  return <Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    callOptions: CallOptions,
  ) => {
    if (factory.inert()) return call.next(call.request, callOptions);
    const method = factory.method(call.method);
    let parent = contextApi.active();
    if (trace.getSpan(parent) === undefined) {
      const scope = currentCallScope();
      if (scope !== undefined) {
        parent = propagator.extract(parent, scope.forwardMetadata, metadataGetter);
      }
    }
    const span = tracer.startSpan(method.name, method.options, parent);
    const active = trace.setSpan(parent, span);
    const metadata = Metadata(callOptions.metadata);
    propagator.inject(active, metadata, metadataSetter);
    return bindContext(active, traceClientCall(span, factory, call, { ...callOptions, metadata }));
  };
}

function traceClientCall<Request, Response>(
  span: Span,
  factory: SpanFactory,
  call: ClientMiddlewareCall<Request, Response>,
  callOptions: CallOptions,
): AsyncGenerator<Response, Response | void, undefined> {
  const end = (how: StepsEnd, error: unknown) =>
    endSpan(
      span,
      factory,
      SpanKind.CLIENT,
      // The application stopped reading a response stream early: the call was cancelled.
      how === 'done'
        ? Status.OK
        : how === 'stopped'
          ? Status.CANCELLED
          : GrpcError.from(error).code,
      error,
    );
  const events = factory.messageEvents;
  const request =
    call.requestStream && events ? messageEvents(call.request, span, 'SENT') : call.request;
  const responses =
    call.responseStream && events
      ? messageEvents(call.next(request, callOptions), span, 'RECEIVED')
      : call.next(request, callOptions);
  return settleSteps<Response, Response | void>(responses, end);
}

/**
 * `network.peer.address`/`port` from grpc-js's peer string: `1.2.3.4:5678`, `[::1]:5678`, or a
 * socket path.
 */
function peerAttributes(peer: string): Attributes {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(peer);
  if (match === null) return peer === '' ? {} : { 'network.peer.address': peer };
  return { 'network.peer.address': match[1] as string, 'network.peer.port': Number(match[2]) };
}
