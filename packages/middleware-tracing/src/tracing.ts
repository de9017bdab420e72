import {
  type Attributes,
  context as contextApi,
  ROOT_CONTEXT,
  SpanKind,
  trace,
} from '@opentelemetry/api';
import { type Interceptor, parseGrpcTarget } from '@switchyard/core';
import {
  endSpan,
  headersGetter,
  headersSetter,
  messageEvents,
  spanFactory,
  type TracingOptions,
} from './spans.js';

/** Options of {@link tracingClientInterceptor}. */
export interface ClientTracingOptions extends TracingOptions {
  /**
   * The channel target the calls go to (`dns:///orders:50051`), reported as `server.address`
   * and `server.port`. Default: none.
   */
  target?: string;
}

/** A tracing layer, which can say when it has nothing to do (no SDK) for every call. */
export interface TracingInterceptor extends Interceptor {
  /** No SDK: spans would be no-ops and no context could be read or written. Asked per call. */
  inert(): boolean;
}

// Trace-context headers the server span replaces in what is forwarded; baggage passes on as received.
const TRACE_CONTEXT_HEADERS = ['traceparent', 'tracestate'];

/**
 * A SERVER span per served call, once for every transport: it continues the caller's W3C trace
 * context (and baggage) from the request headers, is the active span while the call is handled,
 * and replaces the trace context the call forwards, so that the calls made for it (a handler's,
 * a proxy's upstream attempts) are its children even with no OpenTelemetry context manager.
 * With no SDK (no tracer provider and no propagator registered) calls pass untouched.
 */
export function tracingServerInterceptor(options: TracingOptions = {}): TracingInterceptor {
  const factory = spanFactory(SpanKind.SERVER, options, undefined);
  const { tracer, propagator } = factory;
  let lastPeer: string | undefined = '';
  let lastPeerAttributes: Attributes = {};
  const interceptor: Interceptor = (call, next) => {
    if (factory.inert()) return next(call);
    const method = factory.method(call.method);
    const parent = propagator.extract(ROOT_CONTEXT, call.headers, headersGetter);
    const span = tracer.startSpan(method.name, method.options, parent);
    const peer = call.transport.peerAddress;
    if (peer !== lastPeer) {
      lastPeer = peer;
      lastPeerAttributes = peerAttributes(peer);
    }
    span.setAttributes(lastPeerAttributes);
    const active = trace.setSpan(parent, span);
    const forward = call.transport.forwardHeaders;
    for (const header of TRACE_CONTEXT_HEADERS) forward.delete(header);
    propagator.inject(active, forward, headersSetter);
    if (factory.messageEvents && (call.method.requestStream || call.method.responseStream)) {
      call.transport.tap(messageEvents(span, call.method, 'response'));
    }
    return contextApi.with(active, next, undefined, call).then((outcome) => {
      endSpan(span, factory, SpanKind.SERVER, outcome);
      return outcome;
    });
  };
  return Object.assign(interceptor, { inert: factory.inert });
}

/**
 * A CLIENT span per call (per attempt, when installed inside a retry), once for every transport:
 * parented on the active OpenTelemetry span if there is one, else on the trace context the
 * inbound call forwards, and injected into the request headers as W3C `traceparent`/`tracestate`
 * and `baggage`.
 */
export function tracingClientInterceptor(options: ClientTracingOptions = {}): TracingInterceptor {
  const endpoint = options.target === undefined ? undefined : parseGrpcTarget(options.target);
  const factory = spanFactory(SpanKind.CLIENT, options, endpoint);
  const { tracer, propagator } = factory;
  const interceptor: Interceptor = (call, next) => {
    if (factory.inert()) return next(call);
    const method = factory.method(call.method);
    let parent = contextApi.active();
    const { inbound } = call;
    if (trace.getSpan(parent) === undefined && inbound !== undefined) {
      parent = propagator.extract(parent, inbound.transport.forwardHeaders, headersGetter);
    }
    const span = tracer.startSpan(method.name, method.options, parent);
    const active = trace.setSpan(parent, span);
    propagator.inject(active, call.headers, headersSetter);
    if (factory.messageEvents && (call.method.requestStream || call.method.responseStream)) {
      call.transport.tap(messageEvents(span, call.method, 'request'));
    }
    return contextApi.with(active, next, undefined, call).then((outcome) => {
      endSpan(span, factory, SpanKind.CLIENT, outcome);
      return outcome;
    });
  };
  return Object.assign(interceptor, { inert: factory.inert });
}

/**
 * `network.peer.address`/`port` from a `host:port` peer string: `1.2.3.4:5678`, `[::1]:5678`,
 * or a socket path.
 */
function peerAttributes(peer: string | undefined): Attributes {
  if (peer === undefined || peer === '') return {};
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(peer);
  if (match === null) return { 'network.peer.address': peer };
  return { 'network.peer.address': match[1] as string, 'network.peer.port': Number(match[2]) };
}
