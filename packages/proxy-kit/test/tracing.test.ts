import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { tracingClientMiddleware, tracingServerMiddleware } from '@switchyard/middleware-tracing';
import {
  CleanupSteps,
  createTestClient,
  type ReceivedSpan,
  startOtlpReceiver,
  startServer,
} from '@switchyard/testing';
import { afterEach, expect, it } from 'vitest';
import { startProxyProcess } from './support/proxy-process.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

it('client → proxy → server spans form one trace in the OTLP receiver, the proxy’s between', async () => {
  const receiver = await startOtlpReceiver();
  cleanup.defer(() => receiver.close());
  // The app's own spans (client and backend), exported to the same receiver as the proxy's.
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'app' }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: `${receiver.endpoint}/v1/traces` })),
    ],
  });
  cleanup.defer(() => provider.shutdown());
  const tracing = { tracerProvider: provider, propagator: new W3CTraceContextPropagator() };
  const backend = await startServer({
    backend: 'traced',
    middleware: [tracingServerMiddleware(tracing)],
  });
  cleanup.defer(() => backend.stop());
  const proxy = await startProxyProcess(['--upstream', backend.address], {
    ...process.env,
    OTEL_SERVICE_NAME: 'proxy-kit',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
  });
  const { client, close } = createTestClient(proxy.address, {
    middleware: [tracingClientMiddleware(tracing)],
  });
  await client.unary({});
  close();
  // The proxy exports what it has on its way out.
  expect((await proxy.stop()).code).toBe(0);
  await provider.forceFlush();

  const spans = receiver.spans;
  const clientSpan = one(spans, 'app', 'CLIENT');
  const proxyServer = one(spans, 'proxy-kit', 'SERVER');
  const proxyClient = one(spans, 'proxy-kit', 'CLIENT');
  const backendSpan = one(spans, 'app', 'SERVER');
  expect(new Set(spans.map((span) => span.traceId))).toEqual(new Set([clientSpan.traceId]));
  expect(proxyServer.parentSpanId).toBe(clientSpan.spanId);
  expect(proxyClient.parentSpanId).toBe(proxyServer.spanId);
  expect(backendSpan.parentSpanId).toBe(proxyClient.spanId);
  expect(proxyServer.name).toBe(clientSpan.name);
  expect(proxyClient.attributes['server.address']).toBe('127.0.0.1');
});

function one(spans: readonly ReceivedSpan[], service: string, kind: ReceivedSpan['kind']) {
  const found = spans.filter(
    (span) => span.resource['service.name'] === service && span.kind === kind,
  );
  expect(found, `${service} ${kind} spans`).toHaveLength(1);
  return found[0]!;
}
