import { createNoopMeter, type MeterProvider, metrics } from '@opentelemetry/api';
import {
  type CallMethod,
  type Interceptor,
  type MessageDirection,
  type MessageTap,
  type MethodDefinitionLike,
  methodRecognizer,
  parseGrpcTarget,
  type RpcSemconvStability,
  rpcSemconvStability,
  type ServerEndpoint,
  type ServiceDefinitionLike,
  serviceMethods,
} from '@switchyard/core';
import {
  A66_LATENCY_BUCKETS,
  type CallTally,
  callInstruments,
  callKind,
  DEFAULT_DURATION_BUCKETS,
  type GrpcClientLevel,
  type MethodCell,
  type MetricNaming,
  type Side,
} from './instruments.js';

/** Options of {@link metricsServerMiddleware} and {@link metricsClientMiddleware}. */
export interface MetricsOptions {
  /** Where the instruments are created. Default: the global meter provider when the middleware is created. */
  meterProvider?: MeterProvider;
  /**
   * `opentelemetry` (RPC semantic conventions), `grpc` (gRFC A66's `grpc.server.call.*`,
   * `grpc.client.attempt.*`, `grpc.client.call.duration`) or `go-grpc-prometheus` names and
   * labels. Default `opentelemetry`.
   */
  naming?: MetricNaming;
  /**
   * With `naming: 'opentelemetry'`: the stable RPC conventions, the legacy ones (semconv ≤ 1.37,
   * `rpc.server.duration` in ms), or both. Default (middleware and interceptors, so proxy-kit
   * too): stable, both when `OTEL_SEMCONV_STABILITY_OPT_IN` holds `rpc/dup`;
   * `{ legacy: true, stable: false }` opts out.
   */
  semconvStability?: RpcSemconvStability;
  /**
   * The services whose methods are reported by name; any other method is `_OTHER`. Default:
   * every method seen, up to `maxMethods` (nice-grpc only runs middleware for methods of a
   * definition the app registered or compiled in).
   */
  services?: Iterable<ServiceDefinitionLike>;
  /** Without `services`: distinct methods reported by name before the rest become `_OTHER`. Default 200. */
  maxMethods?: number;
  /**
   * Call-duration histogram bounds in seconds. Default 100 µs … 5 min (20 buckets); with
   * `naming: 'grpc'`, A66's 41 buckets from 0 to 100 s.
   */
  durationBuckets?: readonly number[];
  /**
   * Record the serialized bytes of each call's messages. Costs one extra encode per message (the
   * middleware sees decoded messages), so it is off by default; needs `services`, whose
   * definitions hold the encoders. Default `false`; with `naming: 'grpc'`, `true` when
   * `services` are given (A66's `*_total_compressed_message_size`).
   */
  messageSizes?: boolean;
}

/** Options of {@link metricsClientMiddleware}. */
export interface ClientMetricsOptions extends MetricsOptions {
  /**
   * The channel target the clients call (`dns:///orders:50051`), reported as `server.address`
   * and `server.port` (A66's `grpc.target` with `naming: 'grpc'`). Default: none (a client
   * middleware does not see its channel).
   */
  target?: string;
  /**
   * With `naming: 'grpc'`: record A66's per-attempt instruments (`attempt`: install the
   * middleware inside middleware-retry), its per-call duration (`call`: outside), or `both` (no
   * retry middleware in between: a call is one attempt). Default `both`.
   */
  level?: GrpcClientLevel;
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
  options: ClientMetricsOptions,
  endpoint: ServerEndpoint | undefined,
): ((method: CallMethod) => MeasuredMethod) | undefined {
  const {
    meterProvider = metrics.getMeterProvider(),
    naming = 'opentelemetry',
    semconvStability = stableUnlessDup(),
    maxMethods,
    durationBuckets = naming === 'grpc' ? A66_LATENCY_BUCKETS : DEFAULT_DURATION_BUCKETS,
    messageSizes = naming === 'grpc' && options.services !== undefined,
    level = 'both',
    target,
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
    level,
  });
  const sizers = new Map<string, MethodDefinitionLike>();
  if (messageSizes && services !== undefined) {
    instruments.measureSizes();
    for (const service of services) {
      for (const method of serviceMethods(service)) sizers.set(method.path, method);
    }
  }
  // nice-grpc's methods are one object each (and a proxy's are cached per path), so after the
  // first call a method's cell (with its precomputed attributes) is one WeakMap lookup away.
  const measured = new WeakMap<CallMethod, MeasuredMethod>();
  return (method) => {
    let entry = measured.get(method);
    if (entry === undefined) {
      entry = {
        cell: instruments.cell(recognize(method.path), callKind(method), endpoint, target),
        sizes: sizers.get(method.path),
      };
      measured.set(method, entry);
    }
    return entry;
  };
}

type Direction = 'received' | 'sent';
type SizeOf = 'requestSize' | 'responseSize';
const BYTES = { received: 'receivedBytes', sent: 'sentBytes' } as const;

/** Counts each message (and its bytes, when measured) as the transport relays it. */
class MessageCounter implements MessageTap {
  constructor(
    private readonly side: Side,
    private readonly method: CallMethod,
    private readonly cell: MethodCell,
    private readonly tally: CallTally,
    private readonly sizes: MethodDefinitionLike | undefined,
  ) {}

  message(direction: MessageDirection, size: number | undefined, message: unknown): void {
    // A server receives requests and sends responses, a client the reverse.
    const received = (direction === 'request') === (this.side === 'server');
    const counted: Direction = received ? 'received' : 'sent';
    const streamed =
      direction === 'request' ? this.method.requestStream : this.method.responseStream;
    if (streamed) this.cell[counted]++;
    this.tally[counted]++;
    if (this.tally.sized) {
      const sizeOf: SizeOf = direction === 'request' ? 'requestSize' : 'responseSize';
      this.tally[BYTES[counted]] += size ?? this.sizes?.[sizeOf](message) ?? 0;
    }
  }
}

/**
 * The metrics layer of one side, once for every transport: per method (and per endpoint, when
 * one is given), calls started and in flight, call duration by status, and for streaming calls
 * (or when sizes are measured) messages and bytes per call. `undefined` when no SDK had
 * registered a meter provider when it was created: every measurement would be dropped.
 */
function metricsInterceptor(
  side: Side,
  options: ClientMetricsOptions,
  endpoint: ServerEndpoint | undefined,
): Interceptor | undefined {
  const measure = measurer(side, options, endpoint);
  if (measure === undefined) return undefined;
  return (call, next) => {
    const { cell, sizes } = measure(call.method);
    cell.started++;
    cell.active++;
    const start = performance.now();
    const { requestStream, responseStream } = call.method;
    let tally: CallTally | undefined;
    if (requestStream || responseStream || sizes) {
      tally = {
        received: 0,
        sent: 0,
        receivedBytes: 0,
        sentBytes: 0,
        streaming: requestStream === true || responseStream === true,
        sized: sizes !== undefined,
      };
      call.transport.tap(new MessageCounter(side, call.method, cell, tally, sizes));
    }
    return next(call).then((outcome) => {
      cell.finish(outcome.status, performance.now() - start, tally);
      return outcome;
    });
  };
}

/**
 * The default conventions: stable, plus legacy under `rpc/dup` — the migration setting the
 * conventions define, which keeps legacy dashboards fed while new ones are built.
 */
function stableUnlessDup(
  optIn: string | undefined = process.env.OTEL_SEMCONV_STABILITY_OPT_IN,
): RpcSemconvStability {
  const { legacy, stable } = rpcSemconvStability(optIn);
  return { legacy: legacy && stable, stable: true };
}

/**
 * Server-side metrics as a core interceptor (what proxy-kit runs on the calls it serves, and
 * what the nice-grpc middleware adapts); `undefined` with no meter provider registered.
 */
export function metricsServerInterceptor(options: MetricsOptions = {}): Interceptor | undefined {
  return metricsInterceptor('server', options, undefined);
}

/**
 * Client-side metrics as a core interceptor (proxy-kit runs one per endpoint, whose address it
 * names as `target`); `undefined` with no meter provider registered.
 */
export function metricsClientInterceptor(
  options: ClientMetricsOptions = {},
): Interceptor | undefined {
  const endpoint = options.target === undefined ? undefined : parseGrpcTarget(options.target);
  return metricsInterceptor('client', options, endpoint);
}
