import type { IncomingMessage, ServerResponse } from 'node:http';
import { type MeterProvider as ApiMeterProvider, metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { PreaggregatedHistograms } from './histograms.js';

export { type PreaggregatedHistograms, preaggregatedHistograms } from './histograms.js';

/** Metrics rendered as Prometheus text on request, for a listener the caller owns. */
export interface PrometheusMetrics {
  /** The reader to hand to an SDK (`startTelemetry`'s `metricReaders`), or already attached. */
  readonly reader: PrometheusExporter;
  /**
   * Where to create instruments that this reader exports: a provider of this reader alone with
   * `ownProvider`, else the global one (read when asked, so after the SDK started); its
   * histograms kept in `histograms` when given.
   */
  readonly meterProvider: ApiMeterProvider;
  /** Answers a scrape: the text exposition (0.0.4) of everything collected now. */
  handle(request: IncomingMessage, response: ServerResponse): void;
  /** Stops the provider (when it owns one). */
  shutdown(): Promise<void>;
}

/**
 * A Prometheus exporter without a listener of its own: the caller serves {@link
 * PrometheusMetrics.handle} where it wants (an admin listener, `startTelemetry`'s scrape
 * endpoint). With `ownProvider`, a bare `MeterProvider` reads it — no NodeSDK, no OTLP
 * exporters loaded, a fraction of the SDK's memory — for binaries that only want `/metrics`.
 */
export function prometheusMetrics({
  ownProvider = false,
  histograms,
}: {
  ownProvider?: boolean;
  /** Histograms kept outside the SDK, which this reader then collects too. */
  histograms?: PreaggregatedHistograms;
} = {}): PrometheusMetrics {
  // Served from the caller's listener: the exporter's own treats port 0 as "use the default".
  const reader = new PrometheusExporter({
    preventServerStart: true,
    metricProducers: histograms ? [histograms.producer()] : [],
  });
  const provider = ownProvider ? new MeterProvider({ readers: [reader] }) : undefined;
  const base = () => provider ?? metrics.getMeterProvider();
  const meterProvider = histograms?.meterProvider(base);
  const exposition: PrometheusMetrics = {
    reader,
    get meterProvider() {
      return meterProvider ?? base();
    },
    handle: (request, response) => reader.getMetricsRequestHandler(request, response),
    shutdown: async () => {
      await provider?.shutdown();
    },
  };
  return exposition;
}
