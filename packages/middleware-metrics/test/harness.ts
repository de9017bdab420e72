import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
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

/** Cleanup of the running test, from {@link cleanupAfterEach}. */
export interface TestCleanup {
  /** Runs `step` after the test; steps run last first, each awaited. */
  defer(step: () => unknown): void;
  /** A scraped meter, closed after the test. */
  meter(): Promise<ScrapedMeter>;
}

/** Registers, in the calling test file, an `afterEach` that runs what its tests deferred. */
export function cleanupAfterEach(): TestCleanup {
  const steps: (() => unknown)[] = [];
  afterEach(async () => {
    for (const step of steps.splice(0).reverse()) await step();
  });
  const defer = (step: () => unknown) => {
    steps.push(step);
  };
  return {
    defer,
    async meter() {
      const scraped = await startScrapedMeter();
      defer(() => scraped.close());
      return scraped;
    },
  };
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
  const { defer, meter } = cleanupAfterEach();
  let current: ScrapedMeter;
  beforeEach(async () => {
    current = await meter();
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
      defer(() => server.stop());
      const client = createTestClient(server.address, {
        middleware: [
          metricsClientMiddleware({
            ...metrics,
            meterProvider,
            ...(target ? { target: server.address } : {}),
          }),
        ],
      });
      defer(() => client.close());
      return { server, client: client.client };
    },
  };
}
