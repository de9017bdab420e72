import {
  type MeterProvider as ApiMeterProvider,
  type Attributes,
  createNoopMeter,
} from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import {
  AggregationTemporality,
  DataPointType,
  type HistogramMetricData,
  MeterProvider,
  type MetricProducer,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import { startOtlpReceiver } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { preaggregatedHistograms, startTelemetry } from '../src/index.js';

const BOUNDS = [0.001, 0.01, 0.1, 1];
const saved = { ...process.env };
const cleanup: (() => unknown)[] = [];

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  process.env = { ...saved };
});

/** A reader that only collects when asked, in the temporality given. */
class PullReader extends MetricReader {
  constructor(temporality: AggregationTemporality, producers: MetricProducer[]) {
    super({ aggregationTemporalitySelector: () => temporality, metricProducers: producers });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** The same measurements into an SDK histogram and a kept one, on one provider and reader. */
function sideBySide(temporality: AggregationTemporality) {
  const histograms = preaggregatedHistograms();
  const reader =
    temporality === AggregationTemporality.CUMULATIVE
      ? new PrometheusExporter({
          preventServerStart: true,
          metricProducers: [histograms.producer(temporality)],
        })
      : new PullReader(temporality, [histograms.producer(temporality)]);
  const provider = new MeterProvider({ readers: [reader] });
  cleanup.push(() => provider.shutdown());
  const options = { unit: 's', advice: { explicitBucketBoundaries: BOUNDS } };
  const sdk = provider.getMeter('scope').createHistogram('sdk', options);
  const kept = histograms
    .meterProvider(provider)
    .getMeter('scope')
    .createHistogram('kept', options);
  return {
    reader,
    record(value: number, attributes?: Attributes) {
      sdk.record(value, attributes);
      kept.record(value, attributes);
    },
    async histogramsCollected() {
      const { resourceMetrics } = await reader.collect();
      const all = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
      const byName = (name: string) =>
        all.find((metric) => metric.descriptor.name === name) as HistogramMetricData;
      return { sdk: byName('sdk'), kept: byName('kept'), resourceMetrics };
    },
  };
}

const points = (metric: HistogramMetricData) =>
  metric.dataPoints
    .map(({ attributes, value }) => ({ attributes, value }))
    .sort((a, b) => JSON.stringify(a.attributes).localeCompare(JSON.stringify(b.attributes)));

describe('preaggregatedHistograms', () => {
  it('exposes exactly what the SDK exposes for the same measurements, as Prometheus text', async () => {
    const run = sideBySide(AggregationTemporality.CUMULATIVE);
    const frozen = Object.freeze({ method: 'Unary', code: 0 });
    const values = [0, 0.0005, 0.001, 0.0011, 0.01, 0.5, 1, 7, -1, Number.NaN];
    for (let i = 0; i < 1_000; i++) run.record(values[i % values.length] as number, frozen);
    // Key order does not make another series; a fresh object each time is found by its content.
    run.record(0.02, { code: 0, method: 'Unary' });
    run.record(0.02, { method: 'Stream', code: 2 });
    run.record(0.3);

    const { sdk, kept, resourceMetrics } = await run.histogramsCollected();
    expect(kept.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(points(kept)).toEqual(points(sdk));
    const text = new PrometheusSerializer().serialize(resourceMetrics);
    const lines = (name: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}_`) || line.includes(` ${name}_`))
        .map((line) => line.replaceAll(`${name}_`, 'NAME_'))
        .sort();
    expect(lines('kept').length).toBeGreaterThan(10);
    expect(lines('kept')).toEqual(lines('sdk'));
  });

  it('sends one overflow series past 2,000 attribute sets, as the SDK does', async () => {
    const run = sideBySide(AggregationTemporality.CUMULATIVE);
    for (let i = 0; i < 2_100; i++) run.record(0.5, Object.freeze({ endpoint: `10.0.0.${i}` }));
    const { sdk, kept } = await run.histogramsCollected();
    expect(kept.dataPoints).toHaveLength(2_000);
    expect(points(kept)).toEqual(points(sdk));
    expect(points(kept).find((p) => p.attributes['otel.metric.overflow'])?.value.count).toBe(101);
  });

  it('reads an attributes object that is not frozen again on every record', async () => {
    const run = sideBySide(AggregationTemporality.CUMULATIVE);
    const attributes: Attributes = { code: 0 };
    run.record(0.5, attributes);
    attributes.code = 14;
    run.record(0.5, attributes);
    const { kept, sdk } = await run.histogramsCollected();
    expect(points(kept).map((p) => [p.attributes.code, p.value.count])).toEqual([
      [0, 1],
      [14, 1],
    ]);
    // The SDK keeps the object it was first given, so it reports the first series as 14 too.
    expect(points(sdk).map((p) => [p.attributes.code, p.value.count])).toEqual([
      [14, 1],
      [14, 1],
    ]);
  });

  it('reports per-interval counts and sums to a delta reader', async () => {
    const run = sideBySide(AggregationTemporality.DELTA);
    const attributes = Object.freeze({ route: 'a' });
    for (const value of [0.002, 0.02, 2]) run.record(value, attributes);
    const first = await run.histogramsCollected();
    for (const value of [0.0001, 0.2]) run.record(value, attributes);
    const second = await run.histogramsCollected();
    for (const { sdk, kept } of [first, second]) {
      expect(kept.aggregationTemporality).toBe(AggregationTemporality.DELTA);
      // min and max are the SDK's per interval; the kept ones carry none in delta, and a sum
      // that is a difference of two running sums.
      const [want] = points(sdk);
      const [got] = points(kept);
      expect(got?.attributes).toEqual(want?.attributes);
      expect(got?.value.buckets).toEqual(want?.value.buckets);
      expect(got?.value.count).toBe(want?.value.count);
      expect(got?.value.sum).toBeCloseTo(want?.value.sum as number, 12);
      expect(got?.value).not.toHaveProperty('min');
    }
    expect(second.kept.dataPoints[0]?.value.count).toBe(2);
    // Intervals follow on: each starts where the previous ended.
    expect(second.kept.dataPoints[0]?.startTime).toEqual(first.kept.dataPoints[0]?.endTime);
  });

  it('passes other instruments to the SDK, and the API no-op meter through untouched', async () => {
    const histograms = preaggregatedHistograms();
    const reader = new PullReader(AggregationTemporality.CUMULATIVE, [histograms.producer()]);
    const provider = new MeterProvider({ readers: [reader] });
    cleanup.push(() => provider.shutdown());
    const meter = histograms.meterProvider(() => provider).getMeter('scope', '1.2.3');
    expect(histograms.meterProvider(() => provider).getMeter('scope', '1.2.3')).toBe(meter);
    meter.createCounter('calls').add(3);
    meter.createHistogram('latency').record(4);
    const { resourceMetrics } = await reader.collect();
    const scopes = resourceMetrics.scopeMetrics.map((scope) => ({
      scope: scope.scope.name,
      version: scope.scope.version,
      metrics: scope.metrics.map((metric) => metric.descriptor.name),
    }));
    expect(scopes).toEqual([
      { scope: 'scope', version: '1.2.3', metrics: ['calls'] },
      { scope: 'scope', version: '1.2.3', metrics: ['latency'] },
    ]);
    const noop: ApiMeterProvider = { getMeter: () => createNoopMeter() };
    expect(histograms.meterProvider(noop).getMeter('x')).toBe(createNoopMeter());
  });

  it('is pushed by every reader startTelemetry builds, in the exporter’s temporality', async () => {
    const receiver = await startOtlpReceiver();
    cleanup.push(() => receiver.close());
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    process.env.OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE = 'delta';
    process.env.OTEL_METRIC_EXPORT_INTERVAL = '100';
    process.env.OTEL_TRACES_EXPORTER = 'none';
    process.env.OTEL_LOGS_EXPORTER = 'none';
    const histograms = preaggregatedHistograms();
    const telemetry = await startTelemetry({ prometheus: false, histograms });
    cleanup.push(() => telemetry.shutdown());
    const latency = histograms.meterProvider().getMeter('app').createHistogram('kept.latency');
    const exported = async (count: number) => {
      const deadline = Date.now() + 5_000;
      const kept = () => receiver.histograms.filter((h) => h.name === 'kept.latency');
      while (!kept().some((h) => h.points[0]?.count === count)) {
        if (Date.now() > deadline)
          throw new Error(`no export of ${count}: ${JSON.stringify(kept())}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return kept();
    };
    for (let i = 0; i < 3; i++) latency.record(i);
    await exported(3);
    for (let i = 0; i < 2; i++) latency.record(i);
    const sent = await exported(2);
    expect(new Set(sent.map((h) => h.temporality))).toEqual(new Set(['DELTA']));
    expect(sent.map((h) => h.scope)).toContain('app');
  });
});
