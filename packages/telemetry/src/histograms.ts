import {
  type Attributes,
  createNoopMeter,
  type Histogram,
  type Meter,
  type MeterOptions,
  type MeterProvider,
  type MetricOptions,
  metrics,
  ValueType,
} from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  type HistogramMetricData,
  type MetricProducer,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';

/** The SDK's default explicit bucket bounds, for a histogram created without advice. */
const SDK_DEFAULT_BOUNDARIES = [
  0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000,
];
/** Distinct attribute sets per histogram before the rest go to one overflow series (the SDK's default). */
const CARDINALITY_LIMIT = 2000;
const OVERFLOW: Attributes = Object.freeze({ 'otel.metric.overflow': true });
const NO_ATTRIBUTES: Attributes = Object.freeze({});

type HrTime = [number, number];

/** Now as OpenTelemetry's [seconds, nanoseconds]. */
function hrTime(): HrTime {
  const ms = Date.now();
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
}

/**
 * Histograms kept beside the OpenTelemetry SDK instead of in it, and handed to its readers at
 * collection by a {@link MetricProducer} (the SDK's interface for pre-aggregated data). Every
 * other instrument stays the SDK's.
 *
 * Why: the SDK hashes a measurement's attributes (sorted keys, JSON) on every `record`, about
 * 1 µs and a dozen short-lived objects each; a proxy that records three histograms per call paid
 * ~30% more CPU per call for them (issue 20). Here a frozen attributes object — what the
 * middleware passes, one per method and status — is hashed once and then found by identity.
 * Objects that are not frozen are hashed on every record, as the SDK does, since they may change.
 *
 * Differences from the SDK's own histograms, on purpose: Views do not apply to these (they
 * never reach the SDK's pipeline); delta readers get per-interval counts and sum but no
 * min/max (cumulative state has no per-interval extremes).
 */
export interface PreaggregatedHistograms {
  /**
   * A provider whose meters are `base`'s, except that their histograms are kept here. A function
   * is called on every `getMeter`; default: the global provider, read then (after an SDK started).
   */
  meterProvider(base?: MeterProvider | (() => MeterProvider)): MeterProvider;
  /** What the histograms hold, for one reader (`metricProducers`), in that reader's temporality. */
  producer(temporality?: AggregationTemporality): MetricProducer;
}

export function preaggregatedHistograms(): PreaggregatedHistograms {
  const scopes = new Map<string, Scope>();
  const wrapped = new WeakMap<Meter, Meter>();
  const wrap = (meter: Meter, name: string, version?: string, options?: MeterOptions): Meter => {
    // With no SDK the API hands out its no-op meter, which callers may recognise to do nothing.
    if (meter === createNoopMeter()) return meter;
    let own = wrapped.get(meter);
    if (own === undefined) {
      const key = `${name}\n${version ?? ''}\n${options?.schemaUrl ?? ''}`;
      let scope = scopes.get(key);
      if (scope === undefined) {
        scope = new Scope({ name, version, schemaUrl: options?.schemaUrl });
        scopes.set(key, scope);
      }
      own = keepHistograms(meter, scope);
      wrapped.set(meter, own);
    }
    return own;
  };
  return {
    meterProvider(base = () => metrics.getMeterProvider()) {
      const provider = typeof base === 'function' ? base : () => base;
      return {
        getMeter: (name, version, options) =>
          wrap(provider().getMeter(name, version, options), name, version, options),
      };
    },
    producer(temporality = AggregationTemporality.CUMULATIVE) {
      const previous = new WeakMap<Series, Snapshot>();
      return {
        async collect() {
          const now = hrTime();
          const scopeMetrics: ScopeMetrics[] = [];
          for (const scope of scopes.values()) {
            const metrics = scope.collect(now, temporality, previous);
            if (metrics.length > 0) scopeMetrics.push({ scope: scope.id, metrics });
          }
          // A reader merges only the scopes of its producers into its own SDK's resource
          // metrics (MetricReader.collect), so these carry none.
          return { resourceMetrics: { resource: undefined as never, scopeMetrics }, errors: [] };
        },
      };
    },
  };
}

/** A meter like `meter` whose `createHistogram` records into `scope`. */
function keepHistograms(meter: Meter, scope: Scope): Meter {
  return {
    createHistogram: (name, options) => scope.histogram(name, options),
    createGauge: (name, options) => meter.createGauge(name, options),
    createCounter: (name, options) => meter.createCounter(name, options),
    createUpDownCounter: (name, options) => meter.createUpDownCounter(name, options),
    createObservableGauge: (name, options) => meter.createObservableGauge(name, options),
    createObservableCounter: (name, options) => meter.createObservableCounter(name, options),
    createObservableUpDownCounter: (name, options) =>
      meter.createObservableUpDownCounter(name, options),
    addBatchObservableCallback: (callback, observables) =>
      meter.addBatchObservableCallback(callback, observables),
    removeBatchObservableCallback: (callback, observables) =>
      meter.removeBatchObservableCallback(callback, observables),
  };
}

interface Snapshot {
  counts: number[];
  sum: number;
  count: number;
  time: HrTime;
}

/** One attribute set's accumulation since it was first recorded. */
class Series {
  readonly counts: number[];
  sum = 0;
  count = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  readonly start: HrTime = hrTime();

  constructor(
    readonly attributes: Attributes,
    private readonly boundaries: readonly number[],
  ) {
    this.counts = new Array(boundaries.length + 1).fill(0);
  }

  record(value: number): void {
    // Bucket i holds (boundaries[i-1], boundaries[i]]: the first bound not below the value.
    const { boundaries } = this;
    let low = 0;
    let high = boundaries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((boundaries[mid] as number) < value) low = mid + 1;
      else high = mid;
    }
    (this.counts[low] as number)++;
    this.sum += value;
    this.count++;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }
}

class KeptHistogram implements Histogram {
  /** Frozen attribute objects seen before, to their series: no hashing after the first record. */
  private readonly byObject = new WeakMap<Attributes, Series>();
  private readonly byHash = new Map<string, Series>();

  constructor(
    readonly name: string,
    private readonly options: MetricOptions,
    private readonly boundaries: readonly number[],
  ) {}

  record(value: number, attributes: Attributes = NO_ATTRIBUTES): void {
    // The SDK's rules: a histogram takes finite non-negative numbers only.
    if (typeof value !== 'number' || !(value >= 0) || value === Number.POSITIVE_INFINITY) return;
    if (this.options.valueType === ValueType.INT) value = Math.trunc(value);
    let series = this.byObject.get(attributes);
    if (series === undefined) {
      series = this.series(attributes);
      if (Object.isFrozen(attributes)) this.byObject.set(attributes, series);
    }
    series.record(value);
  }

  private series(attributes: Attributes): Series {
    const hash = hashAttributes(attributes);
    let series = this.byHash.get(hash);
    if (series === undefined) {
      const full = this.byHash.size >= CARDINALITY_LIMIT - 1 && attributes !== OVERFLOW;
      if (full) return this.series(OVERFLOW);
      series = new Series({ ...attributes }, this.boundaries);
      this.byHash.set(hash, series);
    }
    return series;
  }

  collect(
    now: HrTime,
    temporality: AggregationTemporality,
    previous: WeakMap<Series, Snapshot>,
  ): HistogramMetricData | undefined {
    if (this.byHash.size === 0) return undefined;
    const boundaries = [...this.boundaries];
    const delta = temporality === AggregationTemporality.DELTA;
    const dataPoints: HistogramMetricData['dataPoints'] = [];
    for (const series of this.byHash.values()) {
      const counts = [...series.counts];
      if (!delta) {
        dataPoints.push({
          startTime: series.start,
          endTime: now,
          attributes: series.attributes,
          value: {
            buckets: { boundaries, counts },
            sum: series.sum,
            count: series.count,
            min: series.min,
            max: series.max,
          },
        });
        continue;
      }
      const last = previous.get(series);
      previous.set(series, { counts, sum: series.sum, count: series.count, time: now });
      dataPoints.push({
        startTime: last?.time ?? series.start,
        endTime: now,
        attributes: series.attributes,
        value: {
          buckets: {
            boundaries,
            counts: last ? counts.map((count, i) => count - (last.counts[i] as number)) : counts,
          },
          sum: series.sum - (last?.sum ?? 0),
          count: series.count - (last?.count ?? 0),
        },
      });
    }
    return {
      descriptor: {
        name: this.name,
        description: this.options.description ?? '',
        unit: this.options.unit ?? '',
        valueType: this.options.valueType ?? ValueType.DOUBLE,
      },
      aggregationTemporality: temporality,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints,
    };
  }
}

/** The histograms of one instrumentation scope (meter name, version, schema). */
class Scope {
  private readonly histograms = new Map<string, KeptHistogram>();

  constructor(readonly id: ScopeMetrics['scope']) {}

  histogram(name: string, options: MetricOptions = {}): Histogram {
    // As the SDK: the same name on one meter is the same instrument.
    let histogram = this.histograms.get(name);
    if (histogram === undefined) {
      const boundaries = options.advice?.explicitBucketBoundaries ?? SDK_DEFAULT_BOUNDARIES;
      histogram = new KeptHistogram(name, options, boundaries);
      this.histograms.set(name, histogram);
    }
    return histogram;
  }

  collect(
    now: HrTime,
    temporality: AggregationTemporality,
    previous: WeakMap<Series, Snapshot>,
  ): HistogramMetricData[] {
    const metrics: HistogramMetricData[] = [];
    for (const histogram of this.histograms.values()) {
      const data = histogram.collect(now, temporality, previous);
      if (data !== undefined) metrics.push(data);
    }
    return metrics;
  }
}

/** The SDK's identity of an attribute set: independent of key order. */
function hashAttributes(attributes: Attributes): string {
  const keys = Object.keys(attributes).sort();
  return JSON.stringify(keys.map((key) => [key, attributes[key]]));
}
