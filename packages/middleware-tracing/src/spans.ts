import {
  type Attributes,
  ProxyTracerProvider,
  propagation,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import {
  type CallMethod,
  type Headers,
  isServerError,
  isStatus,
  type MessageDirection,
  type MessageTap,
  type MethodRecognitionOptions,
  methodRecognizer,
  type Outcome,
  type RpcSemconvStability,
  rpcSemconvStability,
  type ServerEndpoint,
  Status,
  statusName,
} from '@switchyard/core';

/** Options of {@link tracingServerMiddleware} and {@link tracingClientMiddleware}. */
export interface TracingOptions extends MethodRecognitionOptions {
  /** Where spans are created. Default: the global tracer provider. */
  tracerProvider?: TracerProvider;
  /**
   * Reads and writes the trace context in metadata. Default: the global propagator, which the
   * OpenTelemetry SDK sets from `OTEL_PROPAGATORS` (W3C `tracecontext,baggage` by default).
   */
  propagator?: Pick<TextMapPropagator, 'inject' | 'extract'>;
  /** Legacy and/or stable RPC conventions. Default: from `OTEL_SEMCONV_STABILITY_OPT_IN`. */
  semconvStability?: RpcSemconvStability;
  /** Add an `rpc.message` event for each message of a streaming call. Default `true`. */
  messageEvents?: boolean;
}

/** Core's headers as an OpenTelemetry carrier, whatever transport carries the call. */
export const headersGetter: TextMapGetter<Headers> = {
  get: (carrier, key) => carrier.get(key),
  keys: (carrier) => Array.from(carrier, ([key]) => key),
};

export const headersSetter: TextMapSetter<Headers> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** What a span of one method starts with, computed once per method. */
export interface MethodSpan {
  readonly name: string;
  readonly options: SpanOptions;
}

/** What the middleware of one side needs, resolved from its options once. */
export interface SpanFactory {
  readonly tracer: Tracer;
  readonly propagator: Pick<TextMapPropagator, 'inject' | 'extract'>;
  readonly messageEvents: boolean;
  /** The span name and start options of a method. */
  method(method: CallMethod): MethodSpan;
  /** Status attributes by code, per the selected conventions. */
  readonly statusAttributes: readonly Attributes[];
  /**
   * Whether the middleware has nothing to do: the tracer provider and the propagator are the
   * global ones and no SDK has registered either, so spans would be no-ops and no trace context
   * could be read or written. Asked per call: an app may start its SDK after creating its
   * middleware. An explicit provider or propagator is never inert.
   */
  inert(): boolean;
}

// What an unregistered global tracer provider delegates to: the API's one no-op provider.
const NO_DELEGATE = new ProxyTracerProvider().getDelegate();

/**
 * Resolves options into a factory of per-method span descriptions. Span names follow the
 * conventions: `package.Service/Method`, or `grpc` for an unrecognized method under the stable
 * conventions (which then carry the real name in `rpc.method_original`).
 */
export function spanFactory(
  kind: SpanKind,
  options: TracingOptions,
  endpoint: ServerEndpoint | undefined,
): SpanFactory {
  const {
    tracerProvider = trace.getTracerProvider(),
    propagator = propagation,
    semconvStability = rpcSemconvStability(),
    messageEvents = true,
  } = options;
  const recognize = methodRecognizer(options);
  const tracer = tracerProvider.getTracer('@switchyard/middleware-tracing');
  const server: Attributes = {};
  if (endpoint !== undefined) {
    server['server.address'] = endpoint.address;
    if (endpoint.port !== undefined) server['server.port'] = endpoint.port;
  }
  // nice-grpc's methods are one object each; a proxy's are the recognizer's bounded set.
  const methods = new WeakMap<CallMethod, MethodSpan>();
  const proxy = tracerProvider instanceof ProxyTracerProvider ? tracerProvider : undefined;
  return {
    tracer,
    propagator,
    messageEvents,
    inert:
      proxy === undefined || propagator !== propagation
        ? () => false
        : // The API's no-op propagator is the one that names no fields.
          () => proxy.getDelegate() === NO_DELEGATE && propagation.fields().length === 0,
    statusAttributes: Array.from({ length: 17 }, (_, index) => {
      const code = index as Status;
      const attributes: Attributes = {};
      if (semconvStability.legacy) attributes['rpc.grpc.status_code'] = code;
      if (semconvStability.stable) {
        attributes['rpc.response.status_code'] = statusName(code);
        if (spanIsError(kind, code)) {
          attributes['error.type'] = statusName(code);
        }
      }
      return Object.freeze(attributes);
    }),
    method(descriptor) {
      let span = methods.get(descriptor);
      if (span !== undefined) return span;
      const name = recognize(descriptor.path);
      const original = descriptor.path.slice(1);
      const attributes: Attributes = { ...server };
      if (semconvStability.legacy) {
        attributes['rpc.system'] = 'grpc';
        attributes['rpc.service'] = name.service;
        attributes['rpc.method'] = name.method;
      }
      // Under `rpc/dup` the stable `rpc.method` (the full name) replaces the legacy short one.
      if (semconvStability.stable) {
        attributes['rpc.system.name'] = 'grpc';
        attributes['rpc.method'] = name.fullName;
        if (!name.recognized) attributes['rpc.method_original'] = original;
      }
      span = {
        name: name.recognized ? name.fullName : semconvStability.stable ? 'grpc' : original,
        options: { kind, attributes: Object.freeze(attributes) },
      };
      methods.set(descriptor, span);
      return span;
    },
  };
}

/**
 * Whether a status makes the span an error: every non-OK status on a client span, only the six
 * server faults on a server span (a NOT_FOUND is the server doing its job).
 */
export function spanIsError(kind: SpanKind, code: Status): boolean {
  return kind === SpanKind.SERVER ? isServerError(code) : code !== Status.OK;
}

/** Sets the status attributes and span status from the outcome, records its error, and ends the span. */
export function endSpan(span: Span, factory: SpanFactory, kind: SpanKind, outcome: Outcome): void {
  // A code outside the spec (0-16) is reported as UNKNOWN, as in metrics.
  const code = isStatus(outcome.status) ? outcome.status : Status.UNKNOWN;
  span.setAttributes(factory.statusAttributes[code] as Attributes);
  if (spanIsError(kind, code)) {
    const { error } = outcome;
    const message =
      error instanceof Error
        ? ((error as { details?: string }).details ?? error.message)
        : outcome.message || statusName(code);
    span.setStatus({ code: SpanStatusCode.ERROR, message });
    if (error instanceof Error) span.recordException(error);
  }
  span.end();
}

/**
 * A tap adding an `rpc.message` event to `span` for each message of the call's streamed sides,
 * numbered per direction; `sent` is the direction this side sends (responses on a server,
 * requests on a client).
 */
export function messageEvents(span: Span, method: CallMethod, sent: MessageDirection): MessageTap {
  let sentId = 0;
  let receivedId = 0;
  return {
    message(direction) {
      if (!(direction === 'request' ? method.requestStream : method.responseStream)) return;
      const outgoing = direction === sent;
      span.addEvent('rpc.message', {
        'rpc.message.type': outgoing ? 'SENT' : 'RECEIVED',
        'rpc.message.id': outgoing ? ++sentId : ++receivedId,
      });
    },
  };
}
