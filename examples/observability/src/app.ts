// One hop of the example's call chain (frontend → orders → inventory), configured by the
// environment:
//   SERVICE       service name (also OTEL_SERVICE_NAME unless that is set)   default "app"
//   GRPC_ADDRESS  where to serve gRPC                                        default 0.0.0.0:50051
//   NEXT          host:port of the next hop; without it this is the last one
//   OTEL_EXPORTER_PROMETHEUS_PORT / _HOST   the scrape endpoint               default 9464, all interfaces
//   OTEL_*        everything else OpenTelemetry reads (OTLP endpoint, protocol, sampling …)
// Prints one JSON line once serving: {"service","grpc","metrics"}.

import {
  deadlineClientMiddleware,
  deadlineServerMiddleware,
} from '@switchyard/middleware-deadline';
import { metricsClientMiddleware, metricsServerMiddleware } from '@switchyard/middleware-metrics';
import { tracingClientMiddleware, tracingServerMiddleware } from '@switchyard/middleware-tracing';
import { GrpcError, withInboundCall } from '@switchyard/nice-grpc';
import { startTelemetry } from '@switchyard/telemetry';
import {
  createTestServiceImpl,
  type TestServiceClient,
  TestServiceDefinition,
  type TestServiceImplementation,
} from '@switchyard/testing';
import { createChannel, createClientFactory, createServer } from 'nice-grpc';

const service = process.env.SERVICE ?? 'app';
const grpcAddress = process.env.GRPC_ADDRESS ?? '0.0.0.0:50051';
const next = process.env.NEXT;

// Telemetry first: the middleware below find its providers through the global API.
const telemetry = await startTelemetry({ serviceName: process.env.OTEL_SERVICE_NAME ?? service });

// Metrics outermost, so they time the whole call and see what inner middleware reject. The
// deadline middleware passes the caller's deadline on to the next hop.
const services = [TestServiceDefinition];
const server = createServer(withInboundCall())
  .use(metricsServerMiddleware({ services }))
  .use(deadlineServerMiddleware)
  .use(tracingServerMiddleware({ services }));

let downstream: TestServiceClient | undefined;
const channel = next === undefined ? undefined : createChannel(next);
if (channel !== undefined && next !== undefined) {
  // On a client factory the last `use` runs first: metrics, then tracing, then the deadline.
  downstream = createClientFactory()
    .use(deadlineClientMiddleware())
    .use(tracingClientMiddleware({ services, target: next }))
    .use(metricsClientMiddleware({ services, target: next }))
    .create(TestServiceDefinition, channel);
}

/** Passes each unary call on to the next hop; the last hop answers it itself. */
function hop(client: TestServiceClient | undefined): TestServiceImplementation {
  const own = createTestServiceImpl({ backend: service });
  if (client === undefined) return own;
  return {
    ...own,
    async unary(request, { signal }) {
      try {
        const response = await client.unary(request, { signal });
        return { ...response, backend: `${service} > ${response.backend}` };
      } catch (error) {
        throw GrpcError.from(error);
      }
    },
  };
}

server.add(TestServiceDefinition, hop(downstream));
const port = await server.listen(grpcAddress);
const host = grpcAddress.slice(0, grpcAddress.lastIndexOf(':'));
console.log(JSON.stringify({ service, grpc: `${host}:${port}`, metrics: telemetry.prometheusUrl }));

async function stop(): Promise<void> {
  await server.shutdown();
  channel?.close();
  await telemetry.shutdown();
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    stop().then(
      () => process.exit(0),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
