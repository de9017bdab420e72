import { createNoopMeter, type MeterProvider, metrics } from '@opentelemetry/api';
import {
  type MethodDefinitionLike,
  methodRecognizer,
  parseGrpcTarget,
  type RpcSemconvStability,
  rpcSemconvStability,
  type ServerEndpoint,
  type ServiceDefinitionLike,
  Status,
  serviceMethods,
} from '@switchyard/core';
import {
  GrpcError,
  type StepsEnd,
  servedStatus,
  settleSteps,
  tapSteps,
} from '@switchyard/nice-grpc';
import type {
  CallContext,
  CallOptions,
  ClientMiddleware,
  ClientMiddlewareCall,
  MethodDescriptor,
  ServerMiddleware,
  ServerMiddlewareCall,
} from 'nice-grpc-common';
import {
  type CallTally,
  callInstruments,
  callKind,
  DEFAULT_DURATION_BUCKETS,
  type MethodCell,
  type MetricNaming,
  type Side,
} from './instruments.js';

/** Options of {@link metricsServerMiddleware} and {@link metricsClientMiddleware}. */
export interface MetricsOptions {
  /** Where the instruments are created. Default: the global meter provider when the middleware is created. */
  meterProvider?: MeterProvider;
  /** `opentelemetry` (RPC semantic conventions) or `go-grpc-prometheus` names and labels. Default `opentelemetry`. */
  naming?: MetricNaming;
  /** Legacy and/or stable RPC conventions. Default: from `OTEL_SEMCONV_STABILITY_OPT_IN` (`rpc`, `rpc/dup`). */
  semconvStability?: RpcSemconvStability;
  /**
   * The services whose methods are reported by name; any other method is `_OTHER`. Default:
   * every method seen, up to `maxMethods` (nice-grpc only runs middleware for methods of a
   * definition the app registered or compiled in).
   */
  services?: Iterable<ServiceDefinitionLike>;
  /** Without `services`: distinct methods reported by name before the rest become `_OTHER`. Default 200. */
  maxMethods?: number;
  /** Call-duration histogram bounds in seconds. Default 100 µs … 5 min (20 buckets). */
  durationBuckets?: readonly number[];
  /**
   * Record the serialized bytes of each call's messages. Costs one extra encode per message (the
   * middleware sees decoded messages), so it is off by default; needs `services`, whose
   * definitions hold the encoders. Default `false`.
   */
  messageSizes?: boolean;
}

/** Options of {@link metricsClientMiddleware}. */
export interface ClientMetricsOptions extends MetricsOptions {
  /**
   * The channel target the clients call (`dns:///orders:50051`), reported as `server.address`
   * and `server.port`. Default: none (a client middleware does not see its channel).
   */
  target?: string;
}

interface MeasuredMethod {
  cell: MethodCell;
  /** Set when message sizes are measured for this method. */
  sizes: MethodDefinitionLike | undefined;
}

/**
 * What measures a method's calls; `undefined` when the meter is the API's no-op one (no SDK had
 * registered a meter provider when the middleware was created), so that calls pass untouched:
 * every measurement would be dropped, and the API's global meter provider never changes the
 * meter it handed out.
 */
function measurer(
  side: Side,
  options: MetricsOptions,
  endpoint: ServerEndpoint | undefined,
): ((method: MethodDescriptor) => MeasuredMethod) | undefined {
  const {
    meterProvider = metrics.getMeterProvider(),
    naming = 'opentelemetry',
    semconvStability = rpcSemconvStability(),
    maxMethods,
    durationBuckets = DEFAULT_DURATION_BUCKETS,
    messageSizes = false,
  } = options;
  if (
    durationBuckets.length === 0 ||
    durationBuckets.some(
      (b, i) => !Number.isFinite(b) || (i > 0 && b <= (durationBuckets[i - 1] as number)),
    )
  ) {
    throw new TypeError('metrics: `durationBuckets` must be finite numbers in increasing order');
  }
  const services = options.services === undefined ? undefined : [...options.services];
  if (messageSizes && services === undefined) {
    throw new TypeError(
      'metrics: `messageSizes: true` needs `services` (the definitions hold the message encoders)',
    );
  }
  const recognize = methodRecognizer({ services, maxMethods });
  const meter = meterProvider.getMeter('@switchyard/middleware-metrics');
  if (meter === createNoopMeter()) return undefined;
  const instruments = callInstruments(meter, side, {
    naming,
    semconv: semconvStability,
    durationBuckets,
  });
  const sizers = new Map<string, MethodDefinitionLike>();
  if (messageSizes && services !== undefined) {
    instruments.measureSizes();
    for (const service of services) {
      for (const method of serviceMethods(service)) sizers.set(method.path, method);
    }
  }
  // nice-grpc creates one descriptor per method of a server or client, so after the first call
  // a method's cell (with its precomputed attributes) is one WeakMap lookup away.
  const measured = new WeakMap<MethodDescriptor, MeasuredMethod>();
  return (method) => {
    let entry = measured.get(method);
    if (entry === undefined) {
      entry = {
        cell: instruments.cell(recognize(method.path), callKind(method), endpoint),
        sizes: sizers.get(method.path),
      };
      measured.set(method, entry);
    }
    return entry;
  };
}

function startTally(): CallTally {
  return { received: 0, sent: 0, receivedBytes: 0, sentBytes: 0, streaming: false, sized: false };
}

type Direction = 'received' | 'sent';
type SizeOf = 'requestSize' | 'responseSize';
const BYTES = { received: 'receivedBytes', sent: 'sentBytes' } as const;

/** Counts the one message of a non-streamed side of a call. */
function countOne(
  message: unknown,
  direction: Direction,
  tally: CallTally,
  sizes: MethodDefinitionLike | undefined,
  sizeOf: SizeOf,
): void {
  tally[direction] = 1;
  if (sizes) tally[BYTES[direction]] = sizes[sizeOf](message);
}

/**
 * One side of a call, counted as it passes: each message of a streamed side, or the single
 * message a non-streamed side returns.
 */
function counted<T, R>(
  messages: AsyncIterable<T> | AsyncGenerator<T, R, undefined>,
  streamed: boolean,
  direction: Direction,
  cell: MethodCell,
  tally: CallTally,
  sizes: MethodDefinitionLike | undefined,
  sizeOf: SizeOf,
): AsyncGenerator<T, R, undefined> {
  return tapSteps<T, R>(
    messages,
    streamed
      ? (step) => {
          if (step.done) return;
          cell[direction]++;
          tally[direction]++;
          if (sizes) tally[BYTES[direction]] += sizes[sizeOf](step.value);
        }
      : (step) => {
          if (step.done) countOne(step.value, direction, tally, sizes, sizeOf);
        },
  );
}

/** A request of a call about to be counted: streams counted as read, a single one at once. */
function countedRequest<Request>(
  request: Request | AsyncIterable<Request>,
  streamed: boolean,
  direction: Direction,
  cell: MethodCell,
  tally: CallTally,
  sizes: MethodDefinitionLike | undefined,
): Request | AsyncIterable<Request> {
  if (streamed) {
    return counted(
      request as AsyncIterable<Request>,
      true,
      direction,
      cell,
      tally,
      sizes,
      'requestSize',
    );
  }
  countOne(request, direction, tally, sizes, 'requestSize');
  return request;
}

/** What both middleware read of a call; `Next` is the server's context or the client's options. */
interface MeasurableCall<Request, Response, Next> {
  method: MethodDescriptor;
  requestStream: boolean;
  responseStream: boolean;
  request: Request | AsyncIterable<Request>;
  next(
    request: Request | AsyncIterable<Request>,
    next: Next,
  ): AsyncGenerator<Response, Response | void, undefined>;
}

/**
 * One call measured from start to end. A server receives requests and sends responses, a client
 * the reverse (`requests`); `status` reads how the call ended as each side reports it. `status`
 * takes `next` as an argument so that a call costs no closure beyond `finish`.
 */
function measureCall<Request, Response, Next>(
  measure: (method: MethodDescriptor) => MeasuredMethod,
  call: MeasurableCall<Request, Response, Next>,
  next: Next,
  requests: Direction,
  status: (end: StepsEnd, error: unknown, next: Next) => Status,
): AsyncGenerator<Response, Response | void, undefined> {
  const { cell, sizes } = measure(call.method);
  cell.started++;
  cell.active++;
  const start = performance.now();
  const tally = call.requestStream || call.responseStream || sizes ? startTally() : undefined;
  // Ends with the call, seen through its steps: no generator of its own on the hot path.
  const finish = (end: StepsEnd, error: unknown) =>
    cell.finish(status(end, error, next), performance.now() - start, tally);
  if (tally === undefined)
    return settleSteps<Response, Response | void>(call.next(call.request, next), finish);
  tally.streaming = call.requestStream || call.responseStream;
  tally.sized = sizes !== undefined;
  const request = countedRequest(call.request, call.requestStream, requests, cell, tally, sizes);
  const responses = counted<Response, Response | void>(
    call.next(request, next),
    call.responseStream,
    requests === 'received' ? 'sent' : 'received',
    cell,
    tally,
    sizes,
    'responseSize',
  );
  return settleSteps(responses, finish);
}

function serverStatus(end: StepsEnd, error: unknown, context: CallContext): Status {
  return servedStatus(context, end === 'failed', error);
}

function clientStatus(end: StepsEnd, error: unknown): Status {
  if (end === 'done') return Status.OK;
  // The application stopped reading a response stream early: the call was cancelled.
  if (end === 'stopped') return Status.CANCELLED;
  return GrpcError.from(error).code;
}

/**
 * Server middleware recording, per method: call duration by status, calls started and in
 * flight, messages (and optionally bytes) per streaming call. Install it first (outermost) so
 * that it times the whole call and sees calls that inner middleware reject.
 */
export function metricsServerMiddleware(options: MetricsOptions = {}): ServerMiddleware {
  const measure = measurer('server', options, undefined);
  if (measure === undefined) return (call, context) => call.next(call.request, context);
  return function metricsServer<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    return measureCall(measure, call, context, 'received', serverStatus);
  };
}

/**
 * Client middleware recording, per method: call duration by status, calls started and in
 * flight, messages (and optionally bytes) per streaming call. Also counts retries, hedges and
 * retry-budget refusals reported by middleware-retry. On a client factory the last `use` runs
 * first: `use` it last to measure calls as the application sees them (retries included), or
 * before middleware-retry to measure each attempt.
 */
export function metricsClientMiddleware(options: ClientMetricsOptions = {}): ClientMiddleware {
  const endpoint = options.target === undefined ? undefined : parseGrpcTarget(options.target);
  const measure = measurer('client', options, endpoint);
  if (measure === undefined) return (call, callOptions) => call.next(call.request, callOptions);
  return function metricsClient<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    callOptions: CallOptions,
  ): AsyncGenerator<Response, Response | void, undefined> {
    return measureCall(measure, call, callOptions, 'sent', clientStatus);
  };
}
