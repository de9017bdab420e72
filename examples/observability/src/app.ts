// One hop of the example's call chain (frontend → orders → inventory), configured by the
// environment:
//   SERVICE       service name (also OTEL_SERVICE_NAME unless that is set)   default "app"
//   GRPC_ADDRESS  where to serve gRPC                                        default 127.0.0.1:50051
//   NEXT          host:port of the next hop; without it this is the last one
//   OTEL_EXPORTER_PROMETHEUS_PORT / _HOST   the scrape endpoint               default 9464, 127.0.0.1
//   OTEL_*        everything else OpenTelemetry reads (OTLP endpoint, protocol, sampling …)
// Serves grpc.health.v1 too: SERVING once its next hop is (the last hop at once), so a client
// that waits for the frontend to be SERVING waits for the whole chain.
// Prints one JSON line once listening: {"service","grpc","metrics"}.

import { setTimeout as sleep } from 'node:timers/promises';
import {
  deadlineClientMiddleware,
  deadlineServerMiddleware,
} from '@switchyard/middleware-deadline';
import {
  HealthDefinition,
  HealthServiceImpl,
  HealthState,
  servingStateMiddleware,
  watchHealth,
} from '@switchyard/middleware-health';
import { metricsClientMiddleware, metricsServerMiddleware } from '@switchyard/middleware-metrics';
import { tracingClientMiddleware, tracingServerMiddleware } from '@switchyard/middleware-tracing';
import { GrpcError, withInboundCall } from '@switchyard/nice-grpc';
import { startTelemetry } from '@switchyard/telemetry';
import { createChannel, createClientFactory, createServer, ServerError, Status } from 'nice-grpc';
import { ShopDefinition } from './gen/shop/v1/shop.js';

const service = process.env.SERVICE ?? 'app';
const grpcAddress = process.env.GRPC_ADDRESS ?? '127.0.0.1:50051';
const next = process.env.NEXT;

// Telemetry first: the middleware below find its providers through the global API. The scrape
// endpoint binds loopback unless OTEL_EXPORTER_PROMETHEUS_HOST says otherwise (as in Docker).
const telemetry = await startTelemetry({
  serviceName: process.env.OTEL_SERVICE_NAME ?? service,
  prometheus: { host: process.env.OTEL_EXPORTER_PROMETHEUS_HOST || '127.0.0.1' },
});

// Readiness: the last hop is ready once it listens; another once its next hop is SERVING.
const health = HealthState();
const nextHealth =
  next === undefined
    ? undefined
    : watchHealth({
        address: next,
        intervalMs: 1_000,
        timeoutMs: 500,
        onChange: ({ to }) => health.setStatus(to === 'SERVING' ? 'healthy' : 'unhealthy'),
      });
if (nextHealth !== undefined) health.setStatus('unhealthy');

// Metrics outermost, so they time the whole call and see what inner middleware reject; for the
// health service too. The Shop's calls also get the inbound deadline (passed on to the next
// hop), a span, and refused while this hop is not SERVING. Health probes are not traced.
const services = [ShopDefinition];
const server = createServer(withInboundCall()).use(
  metricsServerMiddleware({ services: [ShopDefinition, HealthDefinition] }),
);

const channel = next === undefined ? undefined : createChannel(next);
// On a client factory the last `use` runs first: metrics, then tracing, then the deadline.
const downstream =
  channel === undefined || next === undefined
    ? undefined
    : createClientFactory()
        .use(deadlineClientMiddleware())
        .use(tracingClientMiddleware({ services, target: next }))
        .use(metricsClientMiddleware({ services, target: next }))
        .create(ShopDefinition, channel);

server.add(HealthDefinition, HealthServiceImpl(health));
server
  .with(deadlineServerMiddleware)
  .with(tracingServerMiddleware({ services }))
  .with(servingStateMiddleware(health))
  .add(ShopDefinition, {
    // Passes each call on to the next hop; the last hop answers it itself.
    async getOrder(request, { signal }) {
      if (downstream !== undefined) {
        try {
          const order = await downstream.getOrder(request, { signal });
          return { ...order, servedBy: `${service} > ${order.servedBy}` };
        } catch (error) {
          throw GrpcError.from(error);
        }
      }
      await sleep(request.workMs, undefined, { signal });
      if (request.missing) throw new ServerError(Status.NOT_FOUND, 'no such order');
      return { orderId: request.orderId, servedBy: service };
    },
  });
const port = await server.listen(grpcAddress);
const host = grpcAddress.slice(0, grpcAddress.lastIndexOf(':'));
console.log(JSON.stringify({ service, grpc: `${host}:${port}`, metrics: telemetry.prometheusUrl }));

async function stop(): Promise<void> {
  // Ends the Watch streams of the hop before, which would hold the server's shutdown open.
  health.stop();
  nextHealth?.close();
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
