import {
  type Attributes,
  context as contextApi,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  trace,
} from '@opentelemetry/api';
import {
  currentCallScope,
  GrpcError,
  parseGrpcTarget,
  Status,
  servedStatus,
  serveInCallScope,
} from '@switchyard/core';
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

async function* traceServerCall<Request, Response>(
  span: Span,
  factory: SpanFactory,
  call: ServerMiddlewareCall<Request, Response>,
  context: CallContext,
): AsyncGenerator<Response, Response | void, undefined> {
  let failed = false;
  let error: unknown;
  try {
    const request =
      call.requestStream && factory.messageEvents
        ? messageEvents(call.request, span, 'RECEIVED')
        : call.request;
    if (!call.responseStream) return yield* call.next(request, context);
    if (!factory.messageEvents) return yield* call.next(request, context);
    yield* messageEvents(call.next(request, context), span, 'SENT');
    return;
  } catch (e) {
    failed = true;
    error = e;
    throw e;
  } finally {
    endSpan(span, factory, SpanKind.SERVER, servedStatus(context, failed, error), error);
  }
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

async function* traceClientCall<Request, Response>(
  span: Span,
  factory: SpanFactory,
  call: ClientMiddlewareCall<Request, Response>,
  callOptions: CallOptions,
): AsyncGenerator<Response, Response | void, undefined> {
  let code: Status = Status.OK;
  let error: unknown;
  let settled = false;
  try {
    const request =
      call.requestStream && factory.messageEvents
        ? messageEvents(call.request, span, 'SENT')
        : call.request;
    if (!call.responseStream) {
      const response = yield* call.next(request, callOptions);
      settled = true;
      return response;
    }
    if (factory.messageEvents) {
      yield* messageEvents(call.next(request, callOptions), span, 'RECEIVED');
    } else {
      yield* call.next(request, callOptions);
    }
    settled = true;
    return;
  } catch (e) {
    settled = true;
    error = e;
    code = GrpcError.from(e).code;
    throw e;
  } finally {
    // The application stopped reading a response stream early: the call was cancelled.
    endSpan(span, factory, SpanKind.CLIENT, settled ? code : Status.CANCELLED, error);
  }
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
