import type {
  Attributes,
  BatchObservableResult,
  Histogram,
  Meter,
  Observable,
} from '@opentelemetry/api';
import {
  isServerError,
  isStatus,
  OTHER_METHOD,
  type RpcMethodName,
  type RpcSemconvStability,
  type ServerEndpoint,
  Status,
  statusName,
} from '@switchyard/core';
import { countClientEvents, countServerEvents } from './events.js';

/** Which side of a call the instruments describe. */
export type Side = 'server' | 'client';

/**
 * The metric vocabulary: OpenTelemetry's RPC conventions; gRPC's own instruments (gRFC A66, what
 * grpc-go, grpc-java and grpc-c++'s OpenTelemetry plugins emit); or the names and labels of
 * go-grpc-prometheus (and nice-grpc-prometheus) so that existing dashboards keep working.
 */
export type MetricNaming = 'opentelemetry' | 'grpc' | 'go-grpc-prometheus';

/**
 * Which of gRFC A66's client instruments a client middleware records: per `attempt`
 * (`grpc.client.attempt.*`: install it inside middleware-retry), per `call`
 * (`grpc.client.call.duration`: install it outside), or `both` (no retry in between: a call is
 * one attempt).
 */
export type GrpcClientLevel = 'call' | 'attempt' | 'both';

/** go-grpc-prometheus's `grpc_type` values. */
export type CallKind = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

export function callKind(method: {
  requestStream: boolean | undefined;
  responseStream: boolean | undefined;
}): CallKind {
  // A proxy that does not know a method's kind reports it as unary.
  if (method.requestStream) return method.responseStream ? 'bidi_stream' : 'client_stream';
  return method.responseStream ? 'server_stream' : 'unary';
}

/**
 * Call-duration buckets in seconds: 100 µs to 5 minutes, about 2.5× apart, so sub-millisecond
 * in-cluster calls and minute-long streams both land in informative buckets. The conventions'
 * advice (5 ms … 10 s) can't tell a 0.2 ms call from a 4 ms one.
 */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  30, 60, 120, 300,
];

/** gRFC A66's latency buckets, in seconds: its default view for every duration instrument. */
export const A66_LATENCY_BUCKETS: readonly number[] = [
  0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006,
  0.008, 0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25,
  0.3, 0.4, 0.5, 0.65, 0.8, 1, 2, 5, 10, 20, 50, 100,
];

/** Messages per streaming call: 1 to 65,536 in powers of 4. */
const MESSAGE_COUNT_BUCKETS = [0, 1, 4, 16, 64, 256, 1024, 4096, 16384, 65536];
/** Bytes per call: 0 B to 4 GiB, the size buckets of gRFC A66. */
const SIZE_BUCKETS = [
  0, 1024, 2048, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864, 268435456,
  1073741824, 4294967296,
];

/** What one finished call adds to the instruments besides its duration. */
export interface CallTally {
  /** Messages received (server: requests, client: responses). */
  received: number;
  sent: number;
  /** Serialized bytes received, when message sizes are measured. */
  receivedBytes: number;
  sentBytes: number;
  /** Streaming calls record their message counts. */
  streaming: boolean;
  /** Calls whose message sizes were measured record their bytes. */
  sized: boolean;
}

/** Per-method state shared by every middleware that reports through the same instruments. */
export class MethodCell {
  /** Calls started; read by an observable counter, so starting a call costs one increment. */
  started = 0;
  active = 0;
  /** Stream messages so far, counted live (go-grpc-prometheus's msg counters). */
  received = 0;
  sent = 0;
  /** Calls finished, by status code. */
  readonly handled: number[] = new Array(17).fill(0);
  /** Attribute objects per status code, built on first use and reused for every call. */
  private readonly completions: (readonly Attributes[])[] = [];

  constructor(
    private readonly instruments: CallInstruments,
    /** Attributes of the per-method instruments: started, active, message counts. */
    readonly attributes: Attributes,
    /** One completion-attribute builder per duration histogram (two under `rpc/dup`). */
    private readonly completion: readonly ((code: Status) => Attributes)[],
  ) {}

  /** Records a finished call: `elapsedMs` since it started, `tally` for streams and sizes. */
  finish(status: Status, elapsedMs: number, tally: CallTally | undefined): void {
    this.active--;
    // A code outside the spec (0-16) is reported as UNKNOWN: a peer can send any number, and
    // each would be a series of its own.
    const code = isStatus(status) ? status : Status.UNKNOWN;
    this.handled[code] = (this.handled[code] ?? 0) + 1;
    let attributes = this.completions[code];
    if (attributes === undefined) {
      attributes = this.completion.map((build) => build(code));
      this.completions[code] = attributes;
    }
    const { durations } = this.instruments;
    for (let i = 0; i < durations.length; i++) {
      const duration = durations[i] as DurationHistogram;
      duration.histogram.record(elapsedMs * duration.perMillisecond, attributes[i]);
    }
    if (tally === undefined) return;
    const primary = attributes[0];
    const { messagesReceived, messagesSent, bytesReceived, bytesSent } = this.instruments;
    if (tally.streaming) {
      messagesReceived?.record(tally.received, primary);
      messagesSent?.record(tally.sent, primary);
    }
    if (tally.sized) {
      bytesReceived?.record(tally.receivedBytes, primary);
      bytesSent?.record(tally.sentBytes, primary);
    }
  }
}

interface DurationHistogram {
  histogram: Histogram;
  /** 1 for milliseconds, 0.001 for seconds. */
  perMillisecond: number;
}

/** Options that decide the instruments' names, units and attributes. */
export interface InstrumentOptions {
  naming: MetricNaming;
  semconv: RpcSemconvStability;
  durationBuckets: readonly number[];
  /** With `naming: 'grpc'`, on clients: attempts, calls or both. */
  level: GrpcClientLevel;
}

/**
 * The instruments of one side of the calls, on one meter, in one vocabulary. Middleware created
 * with the same meter and vocabulary share them (and their method cells), so the observable
 * counters see each method exactly once however many servers or client factories report.
 */
export class CallInstruments {
  readonly durations: DurationHistogram[] = [];
  readonly messagesReceived: Histogram | undefined = undefined;
  readonly messagesSent: Histogram | undefined = undefined;
  bytesReceived: Histogram | undefined;
  bytesSent: Histogram | undefined;
  /** Every method a middleware named, by path: how events that carry only a path are labelled. */
  readonly names = new Map<string, RpcMethodName>();
  private readonly cells = new Map<string, MethodCell>();

  constructor(
    private readonly meter: Meter,
    private readonly side: Side,
    private readonly options: InstrumentOptions,
  ) {
    const { naming, semconv, durationBuckets, level } = options;
    const seconds = [...durationBuckets];
    const observables: Observable[] = [];
    let started: Observable | undefined;
    let active: Observable | undefined;
    let handled: Observable | undefined;
    let liveReceived: Observable | undefined;
    let liveSent: Observable | undefined;
    const [received, sent] = side === 'server' ? ['request', 'response'] : ['response', 'request'];
    if (naming === 'opentelemetry') {
      if (semconv.stable) {
        this.durations.push({
          histogram: meter.createHistogram(`rpc.${side}.call.duration`, {
            description: `Duration of ${side === 'server' ? 'incoming' : 'outgoing'} RPCs.`,
            unit: 's',
            advice: { explicitBucketBoundaries: seconds },
          }),
          perMillisecond: 0.001,
        });
      }
      if (semconv.legacy) {
        this.durations.push({
          histogram: meter.createHistogram(`rpc.${side}.duration`, {
            description: `Duration of ${side === 'server' ? 'inbound' : 'outbound'} RPCs.`,
            unit: 'ms',
            advice: { explicitBucketBoundaries: seconds.map((s) => s * 1000) },
          }),
          perMillisecond: 1,
        });
      }
      started = meter.createObservableCounter(`rpc.${side}.call.started`, {
        description: 'RPCs started, including those not yet finished.',
        unit: '{call}',
      });
      active = meter.createObservableUpDownCounter(`rpc.${side}.active_calls`, {
        description: 'RPCs in flight.',
        unit: '{call}',
      });
      // The conventions count messages per RPC from the client's view: "requests" are what
      // the client sends.
      this.messagesReceived = meter.createHistogram(`rpc.${side}.${received}s_per_rpc`, {
        description: 'Messages received per streaming RPC.',
        unit: '{message}',
        advice: { explicitBucketBoundaries: MESSAGE_COUNT_BUCKETS },
      });
      this.messagesSent = meter.createHistogram(`rpc.${side}.${sent}s_per_rpc`, {
        description: 'Messages sent per streaming RPC.',
        unit: '{message}',
        advice: { explicitBucketBoundaries: MESSAGE_COUNT_BUCKETS },
      });
    } else if (naming === 'grpc') {
      // gRFC A66: seconds, `{call}`/`{attempt}`; no in-flight gauge, no message counts.
      const histogram = (name: string, description: string) =>
        this.durations.push({
          histogram: meter.createHistogram(name, {
            description,
            unit: 's',
            advice: { explicitBucketBoundaries: seconds },
          }),
          perMillisecond: 0.001,
        });
      if (side === 'server') {
        histogram(
          'grpc.server.call.duration',
          'Time from when the server saw the call until it sent the status.',
        );
        started = meter.createObservableCounter('grpc.server.call.started', {
          description: 'Calls started on the server.',
          unit: '{call}',
        });
      } else {
        if (level !== 'call') {
          histogram(
            'grpc.client.attempt.duration',
            'Time from the start of an attempt to its end.',
          );
          started = meter.createObservableCounter('grpc.client.attempt.started', {
            description: 'Attempts started, including those not yet finished.',
            unit: '{attempt}',
          });
        }
        if (level !== 'attempt') {
          histogram(
            'grpc.client.call.duration',
            'Time the call took from the application’s point of view, retries included.',
          );
        }
      }
    } else {
      const prefix = `grpc_${side}`;
      this.durations.push({
        histogram: meter.createHistogram(`${prefix}_handling_seconds`, {
          description:
            side === 'server'
              ? 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.'
              : 'Histogram of response latency (seconds) of the gRPC until it is finished by the application.',
          unit: 's',
          advice: { explicitBucketBoundaries: seconds },
        }),
        perMillisecond: 0.001,
      });
      started = meter.createObservableCounter(`${prefix}_started_total`, {
        description: `Total number of RPCs started on the ${side}.`,
      });
      handled = meter.createObservableCounter(`${prefix}_handled_total`, {
        description: `Total number of RPCs completed on the ${side}, regardless of success or failure.`,
      });
      liveReceived = meter.createObservableCounter(`${prefix}_msg_received_total`, {
        description: `Total number of RPC stream messages received by the ${side}.`,
      });
      liveSent = meter.createObservableCounter(`${prefix}_msg_sent_total`, {
        description: `Total number of gRPC stream messages sent by the ${side}.`,
      });
      active = meter.createObservableUpDownCounter(`${prefix}_in_flight`, {
        description: `Number of RPCs in flight on the ${side}.`,
      });
    }
    if (started) observables.push(started);
    if (active) observables.push(active);
    if (handled) observables.push(handled);
    if (liveReceived && liveSent) observables.push(liveReceived, liveSent);
    meter.addBatchObservableCallback((result: BatchObservableResult) => {
      for (const cell of this.cells.values()) {
        if (started) result.observe(started, cell.started, cell.attributes);
        if (active) result.observe(active, cell.active, cell.attributes);
        if (liveReceived && liveSent) {
          result.observe(liveReceived, cell.received, cell.attributes);
          result.observe(liveSent, cell.sent, cell.attributes);
        }
        if (handled) {
          for (let code = 0; code < cell.handled.length; code++) {
            const count = cell.handled[code] as number;
            if (count > 0)
              result.observe(handled, count, { ...cell.attributes, grpc_code: statusName(code) });
          }
        }
      }
    }, observables);
  }

  /** Creates the per-call size histograms, the first time a middleware asks to measure sizes. */
  measureSizes(): void {
    if (this.bytesReceived !== undefined) return;
    const { meter, side } = this;
    const { naming, level } = this.options;
    // A66 measures sizes per server call and per client attempt, not per client call.
    if (naming === 'grpc' && side === 'client' && level === 'call') return;
    const [received, sent] = side === 'server' ? ['request', 'response'] : ['response', 'request'];
    const a66 = `grpc.${side}.${side === 'server' ? 'call' : 'attempt'}`;
    const names =
      naming === 'opentelemetry'
        ? [`rpc.${side}.call.${received}.size`, `rpc.${side}.call.${sent}.size`]
        : naming === 'grpc'
          ? [
              `${a66}.rcvd_total_compressed_message_size`,
              `${a66}.sent_total_compressed_message_size`,
            ]
          : [`grpc_${side}_received_bytes_per_call`, `grpc_${side}_sent_bytes_per_call`];
    const [receivedBytes, sentBytes] = names.map((name, i) =>
      meter.createHistogram(name as string, {
        description: `Serialized bytes of all messages ${i === 0 ? 'received' : 'sent'} in one RPC.`,
        unit: 'By',
        advice: { explicitBucketBoundaries: SIZE_BUCKETS },
      }),
    );
    this.bytesReceived = receivedBytes;
    this.bytesSent = sentBytes;
  }

  /** Attributes naming a method for event counters (retries, authorization), by call path. */
  eventAttributes(path: string): Attributes {
    const name = this.names.get(path) ?? OTHER_METHOD;
    if (this.options.naming === 'go-grpc-prometheus') {
      return { grpc_service: name.service, grpc_method: name.method, grpc_path: name.path };
    }
    if (this.options.naming === 'grpc') return { 'grpc.method': a66Method(name) };
    return this.options.semconv.stable
      ? { 'rpc.system.name': 'grpc', 'rpc.method': name.fullName }
      : { 'rpc.system': 'grpc', 'rpc.service': name.service, 'rpc.method': name.method };
  }

  /** The cell of one method (and call kind and server, where the vocabulary labels them). */
  cell(
    name: RpcMethodName,
    kind: CallKind,
    endpoint: ServerEndpoint | undefined,
    target: string | undefined,
  ): MethodCell {
    if (name.recognized) this.names.set(name.path, name);
    const { attributes, completion } = this.describe(name, kind, endpoint, target);
    const key = JSON.stringify(attributes);
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = new MethodCell(this, attributes, completion);
      this.cells.set(key, cell);
    }
    return cell;
  }

  private describe(
    name: RpcMethodName,
    kind: CallKind,
    endpoint: ServerEndpoint | undefined,
    target: string | undefined,
  ): { attributes: Attributes; completion: ((code: Status) => Attributes)[] } {
    const { naming, semconv } = this.options;
    if (naming === 'grpc') {
      const attributes = Object.freeze({
        'grpc.method': a66Method(name),
        ...(this.side === 'client' && target !== undefined ? { 'grpc.target': target } : {}),
      });
      const completion = (code: Status) =>
        Object.freeze({ ...attributes, 'grpc.status': statusName(code) });
      return { attributes, completion: this.durations.map(() => completion) };
    }
    if (naming === 'go-grpc-prometheus') {
      const attributes = Object.freeze({
        grpc_type: kind,
        grpc_service: name.service,
        grpc_method: name.method,
        // nice-grpc-prometheus's extra label: keeps its users' dashboards working too.
        grpc_path: name.path,
      });
      return {
        attributes,
        completion: [(code) => Object.freeze({ ...attributes, grpc_code: statusName(code) })],
      };
    }
    const server: Attributes = {};
    if (endpoint !== undefined) {
      server['server.address'] = endpoint.address;
      if (endpoint.port !== undefined) server['server.port'] = endpoint.port;
    }
    const stable = Object.freeze({
      'rpc.system.name': 'grpc',
      'rpc.method': name.fullName,
      ...server,
    });
    const legacy = Object.freeze({
      'rpc.system': 'grpc',
      'rpc.service': name.service,
      'rpc.method': name.method,
      ...server,
    });
    const isError = this.side === 'server' ? isServerError : (code: Status) => code !== Status.OK;
    const stableCompletion = (code: Status): Attributes => {
      const status = statusName(code);
      return Object.freeze(
        isError(code)
          ? { ...stable, 'rpc.response.status_code': status, 'error.type': status }
          : { ...stable, 'rpc.response.status_code': status },
      );
    };
    const legacyCompletion = (code: Status): Attributes =>
      Object.freeze({ ...legacy, 'rpc.grpc.status_code': code });
    // Duration histograms are created stable first, so completions follow the same order; the
    // other instruments use the first (the stable attributes whenever those are on).
    const completion: ((code: Status) => Attributes)[] = [];
    if (semconv.stable) completion.push(stableCompletion);
    if (semconv.legacy) completion.push(legacyCompletion);
    return { attributes: semconv.stable ? stable : legacy, completion };
  }
}

/** A66's `grpc.method`: the full name, or `other` for a method outside the registered ones. */
function a66Method(name: RpcMethodName): string {
  return name.recognized ? name.fullName : 'other';
}

const shared = new WeakMap<Meter, Map<string, CallInstruments>>();

/**
 * The instruments for `side` on `meter` in the given vocabulary, created on first use. Later
 * callers share them; the first caller's duration buckets are the ones used.
 */
export function callInstruments(
  meter: Meter,
  side: Side,
  options: InstrumentOptions,
): CallInstruments {
  let byKey = shared.get(meter);
  if (byKey === undefined) {
    byKey = new Map();
    shared.set(meter, byKey);
  }
  const { naming, semconv, level } = options;
  const key = `${side} ${naming} ${semconv.legacy} ${semconv.stable} ${naming === 'grpc' ? level : ''}`;
  let instruments = byKey.get(key);
  if (instruments === undefined) {
    instruments = new CallInstruments(meter, side, options);
    byKey.set(key, instruments);
    if (side === 'client') countClientEvents(meter, instruments, options);
    else countServerEvents(meter, instruments, options);
  }
  return instruments;
}
