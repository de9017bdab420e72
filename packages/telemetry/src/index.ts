import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OTLPMetricExporter as OTLPGrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as OTLPJsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OTLPProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import {
  AggregationTemporality,
  ConsoleMetricExporter,
  type IMetricReader,
  InstrumentType,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { PreaggregatedHistograms } from './histograms.js';
import { prometheusMetrics } from './prometheus.js';

export { type PreaggregatedHistograms, preaggregatedHistograms } from './histograms.js';
export { type PrometheusMetrics, prometheusMetrics } from './prometheus.js';

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  /** `service.name` of every span and metric. Default: `OTEL_SERVICE_NAME`, else the SDK's default. */
  serviceName?: string;
  /**
   * The Prometheus scrape endpoint, or `false` for none. Port: `OTEL_EXPORTER_PROMETHEUS_PORT`,
   * else 9464 (0 picks a free port); host: `OTEL_EXPORTER_PROMETHEUS_HOST`, else every
   * interface; path `/metrics`.
   */
  prometheus?: false | { port?: number; host?: string; path?: string };
  /**
   * More metric readers, besides those the variables ask for: e.g. the reader of a Prometheus
   * endpoint the caller serves itself ({@link prometheusMetrics}), such as proxy-kit's admin.
   */
  metricReaders?: readonly IMetricReader[];
  /**
   * Histograms kept outside the SDK ({@link preaggregatedHistograms}): every reader built here
   * (from the variables, and the scrape endpoint) collects them too, in its own temporality.
   * Readers in `metricReaders` are the caller's to give them to.
   */
  histograms?: PreaggregatedHistograms;
}

/** Telemetry running for this process. */
export interface Telemetry {
  /** Where Prometheus scrapes, e.g. `http://[::]:9464/metrics`; undefined when disabled. */
  readonly prometheusUrl: string | undefined;
  /**
   * Exports what is buffered (spans, last metrics) and closes the scrape endpoint. Rejects when
   * that last export fails (a collector that is down): the endpoint is closed all the same, and
   * the caller decides whether that is worth more than a log line.
   */
  shutdown(): Promise<void>;
}

/** A configuration value that can't be used, named by the variable or option it came from. */
export class TelemetryConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'TelemetryConfigError';
  }
}

/**
 * Starts OpenTelemetry for an app or binary, before its servers and clients are created (the
 * metrics and tracing middleware find the providers through the global API):
 *
 * - traces, logs, propagators and resource through `@opentelemetry/sdk-node`, configured by the
 *   standard variables (`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
 *   `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_PROPAGATORS`, `OTEL_SERVICE_NAME`,
 *   `OTEL_RESOURCE_ATTRIBUTES`, …);
 * - metrics pushed as `OTEL_METRICS_EXPORTER` says (`otlp` by default, `console`, `none`;
 *   `prometheus` is the scrape endpoint below) every `OTEL_METRIC_EXPORT_INTERVAL` ms;
 * - a Prometheus scrape endpoint.
 */
export async function startTelemetry(options: TelemetryOptions = {}): Promise<Telemetry> {
  const { serviceName, prometheus = {}, metricReaders = [], histograms } = options;
  // The SDK and its exporters read process.env themselves; so does everything here.
  const env = process.env;
  const readers: IMetricReader[] = [...metricReadersFromEnv(env, histograms), ...metricReaders];
  let scrape: Server | undefined;
  let prometheusUrl: string | undefined;
  if (prometheus !== false) {
    const port = prometheus.port ?? portFromEnv(env);
    const host = prometheus.host ?? (env.OTEL_EXPORTER_PROMETHEUS_HOST || undefined);
    const path = prometheus.path ?? '/metrics';
    const exposition = prometheusMetrics({ histograms });
    readers.push(exposition.reader);
    scrape = createServer((request, response) => {
      if (request.method === 'GET' && new URL(request.url ?? '/', 'http://x').pathname === path) {
        exposition.handle(request, response);
      } else {
        response.writeHead(404).end();
      }
    });
    const server = scrape;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) =>
        reject(
          new TelemetryConfigError(
            prometheus.port === undefined ? 'OTEL_EXPORTER_PROMETHEUS_PORT' : 'prometheus.port',
            `cannot serve Prometheus metrics on ${host ?? '*'}:${port}: ${error.message}`,
          ),
        ),
      );
      server.listen(port, host, () => resolve());
    });
    const bound = server.address() as AddressInfo;
    const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
    prometheusUrl = `http://${shownHost}:${bound.port}${path}`;
  }
  const sdk = new NodeSDK({
    serviceName: serviceName ?? (env.OTEL_SERVICE_NAME || undefined),
    metricReaders: readers,
  });
  sdk.start();
  return {
    prometheusUrl,
    async shutdown() {
      try {
        await sdk.shutdown();
      } finally {
        if (scrape !== undefined) {
          const server = scrape;
          await new Promise<void>((resolve) => server.close(() => resolve()));
        }
      }
    },
  };
}

function portFromEnv(env: NodeJS.ProcessEnv): number {
  const raw = env.OTEL_EXPORTER_PROMETHEUS_PORT;
  if (raw === undefined || raw === '') return 9464;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TelemetryConfigError(
      'OTEL_EXPORTER_PROMETHEUS_PORT',
      `expected a port number (0-65535), got ${JSON.stringify(raw)}`,
    );
  }
  return port;
}

// The SDK builds these itself only when given no readers at all; adding the scrape endpoint
// means building them here, with the same variables and defaults (OpenTelemetry spec,
// "Exporter selection").
function metricReadersFromEnv(
  env: NodeJS.ProcessEnv,
  histograms: PreaggregatedHistograms | undefined,
): IMetricReader[] {
  const names = (env.OTEL_METRICS_EXPORTER || 'otlp')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  if (names.includes('none')) return [];
  const readers: IMetricReader[] = [];
  for (const name of new Set(names)) {
    if (name === 'otlp') readers.push(periodic(otlpMetricExporter(env), env, histograms));
    else if (name === 'console') {
      readers.push(periodic(new ConsoleMetricExporter(), env, histograms));
    } else if (name !== 'prometheus') {
      throw new TelemetryConfigError(
        'OTEL_METRICS_EXPORTER',
        `unknown exporter ${JSON.stringify(name)} (expected otlp, prometheus, console or none)`,
      );
    }
  }
  return readers;
}

function otlpMetricExporter(env: NodeJS.ProcessEnv): PushMetricExporter {
  const key = env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL
    ? 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL'
    : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = env[key]?.trim() || 'http/protobuf';
  switch (protocol) {
    case 'http/protobuf':
      return new OTLPProtoMetricExporter();
    case 'http/json':
      return new OTLPJsonMetricExporter();
    case 'grpc':
      return new OTLPGrpcMetricExporter();
    default:
      throw new TelemetryConfigError(
        key,
        `unknown protocol ${JSON.stringify(protocol)} (expected http/protobuf, http/json or grpc)`,
      );
  }
}

function periodic(
  exporter: PushMetricExporter,
  env: NodeJS.ProcessEnv,
  histograms: PreaggregatedHistograms | undefined,
): IMetricReader {
  const interval = millisFromEnv(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000);
  const timeout = millisFromEnv(env, 'OTEL_METRIC_EXPORT_TIMEOUT', 30_000);
  // OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, as the exporter reads it.
  const temporality =
    exporter.selectAggregationTemporality?.(InstrumentType.HISTOGRAM) ??
    AggregationTemporality.CUMULATIVE;
  return new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: interval,
    exportTimeoutMillis: Math.min(timeout, interval),
    metricProducers: histograms ? [histograms.producer(temporality)] : [],
  });
}

function millisFromEnv(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new TelemetryConfigError(
      key,
      `expected a positive number of milliseconds, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}
