import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { type MetricFamily, parsePrometheusText } from '@switchyard/testing';

/** A meter provider read by a real Prometheus exporter, scraped over HTTP on 127.0.0.1. */
export interface ScrapedMeter {
  meterProvider: MeterProvider;
  /** The scrape endpoint, `http://127.0.0.1:<port>/metrics`. */
  url: string;
  /** GETs the endpoint and parses the exposition strictly. */
  scrape(): Promise<Map<string, MetricFamily>>;
  close(): Promise<void>;
}

export async function startScrapedMeter(): Promise<ScrapedMeter> {
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutTargetInfo: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  const server: Server = createServer((request, response) =>
    exporter.getMetricsRequestHandler(request, response),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  return {
    meterProvider,
    url,
    async scrape() {
      const response = await fetch(url);
      if (response.status !== 200) throw new Error(`scrape answered ${response.status}`);
      return parsePrometheusText(await response.text());
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await meterProvider.shutdown();
    },
  };
}
