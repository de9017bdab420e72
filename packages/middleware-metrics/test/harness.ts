import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  CleanupSteps,
  createTestClient,
  type MetricFamily,
  parsePrometheusText,
  type RunningTestServer,
  type StartServerOptions,
  startServer,
  type TestServiceClient,
} from '@switchyard/testing';
import { afterEach, beforeEach } from 'vitest';
import {
  type MetricsOptions,
  metricsClientMiddleware,
  metricsServerMiddleware,
} from '../src/index.js';

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

/** A scraped meter, closed by `cleanup`. */
export async function scrapedMeter(cleanup: CleanupSteps): Promise<ScrapedMeter> {
  const scraped = await startScrapedMeter();
  cleanup.defer(() => scraped.close());
  return scraped;
}

/** How {@link MeasuredCalls.start} sets up its server and client. */
export interface MeasuredSetup
  extends Pick<StartServerOptions, 'serverOptions' | 'implementation'> {
  /** Options of both middleware; the meter provider is always the test's own. */
  metrics?: MetricsOptions;
  /** Name the server as the client middleware's `target` (`server.address`, `server.port`). */
  target?: boolean;
}

/** A fresh scraped meter for each test, and the calls it measures. */
export interface MeasuredCalls {
  /** The running test's meter. */
  readonly meter: ScrapedMeter;
  /**
   * Starts a test server and a client on it, each with its metrics middleware reporting to
   * `meter`; both are closed after the test.
   */
  start(setup?: MeasuredSetup): Promise<{ server: RunningTestServer; client: TestServiceClient }>;
}

/** Registers, in the calling test file, a meter per test and the cleanup of what it measured. */
export function measuredCallsPerTest(): MeasuredCalls {
  const cleanup = new CleanupSteps();
  afterEach(() => cleanup.run());
  let current: ScrapedMeter;
  beforeEach(async () => {
    current = await scrapedMeter(cleanup);
  });
  return {
    get meter() {
      return current;
    },
    async start({ metrics = {}, target = false, ...serverSetup } = {}) {
      const { meterProvider } = current;
      const server = await startServer({
        ...serverSetup,
        middleware: [metricsServerMiddleware({ ...metrics, meterProvider })],
      });
      cleanup.defer(() => server.stop());
      const client = createTestClient(server.address, {
        middleware: [
          metricsClientMiddleware({
            ...metrics,
            meterProvider,
            ...(target ? { target: server.address } : {}),
          }),
        ],
      });
      cleanup.defer(() => client.close());
      return { server, client: client.client };
    },
  };
}
