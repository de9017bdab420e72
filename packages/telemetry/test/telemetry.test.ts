import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metricsClientMiddleware, metricsServerMiddleware } from '@switchyard/middleware-metrics';
import { tracingClientMiddleware, tracingServerMiddleware } from '@switchyard/middleware-tracing';
// Shared test helpers of the sibling packages: a strict Prometheus text parser and a decoding
// OTLP/HTTP receiver.
import {
  createTestClient,
  parsePrometheusText,
  seriesWith,
  startOtlpReceiver,
  startServer,
} from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { startTelemetry, type Telemetry, TelemetryConfigError } from '../src/index.js';

const SERVICE = 'switchyard.testing.v1.TestService';
const saved = { ...process.env };
const cleanup: (() => unknown)[] = [];

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  process.env = { ...saved };
});

describe('startTelemetry', () => {
  it('exports spans over OTLP per OTEL_* variables and serves metrics for Prometheus to scrape', async () => {
    const receiver = await startOtlpReceiver();
    cleanup.push(() => receiver.close());
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/protobuf';
    process.env.OTEL_SERVICE_NAME = 'checkout';
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment.name=test';
    const telemetry: Telemetry = await startTelemetry({
      prometheus: { port: 0, host: '127.0.0.1' },
    });
    let running = true;
    cleanup.push(() => running && telemetry.shutdown());
    expect(telemetry.prometheusUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    // Middleware created after start find the SDK through the global API.
    const server = await startServer({
      middleware: [metricsServerMiddleware(), tracingServerMiddleware()],
    });
    cleanup.push(() => server.stop());
    const client = createTestClient(server.address, {
      middleware: [metricsClientMiddleware(), tracingClientMiddleware()],
    });
    cleanup.push(() => client.close());
    await client.client.unary({ payload: 'hello' });

    const response = await fetch(telemetry.prometheusUrl as string);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const families = parsePrometheusText(await response.text());
    // The stable RPC conventions, the metrics middleware's default (issue 21).
    const duration = families.get('rpc_server_call_duration')?.histograms ?? [];
    expect(seriesWith(duration, { rpc_method: `${SERVICE}/Unary` }).count).toBe(1);
    expect(families.get('target_info')?.samples[0]?.labels).toMatchObject({
      service_name: 'checkout',
      deployment_environment_name: 'test',
    });
    expect((await fetch(telemetry.prometheusUrl?.replace('/metrics', '/other') ?? '')).status).toBe(
      404,
    );

    await telemetry.shutdown();
    running = false;
    const spans = receiver.spans;
    expect(spans.map((s) => [s.kind, s.name]).sort()).toEqual([
      ['CLIENT', `${SERVICE}/Unary`],
      ['SERVER', `${SERVICE}/Unary`],
    ]);
    const [first, second] = spans;
    expect(first?.traceId).toBe(second?.traceId);
    expect(first?.resource['service.name']).toBe('checkout');
    // Metrics were pushed over OTLP too (OTEL_METRICS_EXPORTER defaults to otlp), as protobuf.
    expect(receiver.requests).toContainEqual({
      path: '/v1/metrics',
      contentType: 'application/x-protobuf',
    });
  });

  it('names the variable or option behind a configuration it cannot use', async () => {
    process.env.OTEL_METRICS_EXPORTER = 'none';
    process.env.OTEL_TRACES_EXPORTER = 'none';
    process.env.OTEL_EXPORTER_PROMETHEUS_PORT = 'ninety';
    await expect(startTelemetry()).rejects.toThrow(
      new TelemetryConfigError(
        'OTEL_EXPORTER_PROMETHEUS_PORT',
        'expected a port number (0-65535), got "ninety"',
      ),
    );
    process.env.OTEL_EXPORTER_PROMETHEUS_PORT = '0';
    process.env.OTEL_METRICS_EXPORTER = 'otlp,statsd';
    await expect(startTelemetry({ prometheus: { host: '127.0.0.1' } })).rejects.toThrow(
      /^OTEL_METRICS_EXPORTER: unknown exporter "statsd"/,
    );
    process.env.OTEL_METRICS_EXPORTER = 'otlp';
    process.env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL = 'carrier-pigeon';
    await expect(startTelemetry({ prometheus: false })).rejects.toThrow(
      /^OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: unknown protocol "carrier-pigeon"/,
    );
  });

  it('fails clearly when the scrape port is taken', async () => {
    process.env.OTEL_METRICS_EXPORTER = 'none';
    process.env.OTEL_TRACES_EXPORTER = 'none';
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => squatter.close(resolve)));
    const { port } = squatter.address() as AddressInfo;
    const failure = startTelemetry({ prometheus: { port, host: '127.0.0.1' } });
    await expect(failure).rejects.toBeInstanceOf(TelemetryConfigError);
    await expect(failure).rejects.toThrow(
      new RegExp(
        `^prometheus.port: cannot serve Prometheus metrics on 127.0.0.1:${port}: .*EADDRINUSE`,
      ),
    );
  });
});
