import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { GrpcError } from '@switchyard/nice-grpc';
import {
  createTestClient,
  createTestServiceImpl,
  type OtlpReceiver,
  type ReceivedSpan,
  type RunningTestServer,
  startOtlpReceiver,
  startServer,
  type TestClient,
  type TestServiceClient,
  type TestServiceImplementation,
} from '@switchyard/testing';
import type { ClientMiddleware, ServerMiddleware } from 'nice-grpc-common';

/** W3C trace context and baggage, as the SDK's default `OTEL_PROPAGATORS` configures them. */
export const w3cPropagator = new CompositePropagator({
  propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
});

/** A tracer provider exporting over real OTLP/HTTP protobuf to a receiver on 127.0.0.1. */
export interface ExportedTracing {
  provider: BasicTracerProvider;
  receiver: OtlpReceiver;
  /** Exports everything ended so far and returns what the receiver decoded. */
  flush(): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

export async function startExportedTracing(): Promise<ExportedTracing> {
  const receiver = await startOtlpReceiver();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'tracing-test' }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: `${receiver.endpoint}/v1/traces` })),
    ],
  });
  return {
    provider,
    receiver,
    async flush() {
      await provider.forceFlush();
      return receiver.spans;
    },
    async close() {
      await provider.shutdown();
      await receiver.close();
    },
  };
}

/** One hop of a call chain: serves TestService; its Unary calls the next hop, if any. */
export function hopImplementation(
  name: string,
  next?: TestServiceClient,
): TestServiceImplementation {
  const base = createTestServiceImpl({ backend: name });
  if (next === undefined) return base;
  return {
    ...base,
    async unary(request) {
      try {
        const response = await next.unary(request);
        return { ...response, backend: `${name}>${response.backend}` };
      } catch (error) {
        // Pass the downstream status on (nice-grpc would turn a ClientError into UNKNOWN).
        throw GrpcError.from(error);
      }
    },
  };
}

export interface Chain {
  /** Servers in call order: A, B, C. */
  servers: RunningTestServer[];
  /** The client calling A. */
  entry: TestClient;
  close(): Promise<void>;
}

/** Starts C, then B calling C, then A calling B, each with the given middleware. */
export async function startChain(
  server: () => ServerMiddleware[],
  client: (target: string) => ClientMiddleware[],
): Promise<Chain> {
  const servers: RunningTestServer[] = [];
  const clients: TestClient[] = [];
  let next: TestClient | undefined;
  for (const name of ['c', 'b', 'a']) {
    const hop = await startServer({
      backend: name,
      middleware: server(),
      implementation: (backend) => hopImplementation(backend, next?.client),
    });
    servers.unshift(hop);
    next = createTestClient(hop.address, { middleware: client(hop.address) });
    clients.push(next);
  }
  return {
    servers,
    entry: next as TestClient,
    async close() {
      for (const c of clients) c.close();
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}
