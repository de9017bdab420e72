/**
 * The pricing service the catalog backends call: the third hop of a call with a deadline. It
 * reports how much of that deadline it was given.
 *
 * Configured by its environment: OTEL_* (as @switchyard/telemetry reads them).
 * Prints one JSON line once serving: {"name","address","metrics"}; exits when stdin closes.
 */
import { createInterface } from 'node:readline';
import { deadlineServerMiddleware } from '@switchyard/middleware-deadline';
import { metricsServerMiddleware } from '@switchyard/middleware-metrics';
import { tracingServerMiddleware } from '@switchyard/middleware-tracing';
import { withInboundCall } from '@switchyard/nice-grpc';
import { startTelemetry } from '@switchyard/telemetry';
import { createServer } from 'nice-grpc';
import { PricingDefinition } from './gen/demo/v1/catalog.js';

const name = 'pricing';
const telemetry = await startTelemetry({ serviceName: name });
const services = [PricingDefinition];
const server = createServer(withInboundCall())
  .use(metricsServerMiddleware({ services }))
  .use(tracingServerMiddleware({ services }))
  .use(deadlineServerMiddleware);
server.add(PricingDefinition, {
  async getQuote(request, context) {
    const left = context.deadline === undefined ? -1 : context.deadline.getTime() - Date.now();
    return { service: name, deadlineLeftMs: Math.round(left), cents: 100 + request.id.length };
  },
});
const port = await server.listen('127.0.0.1:0');
console.log(
  JSON.stringify({ name, address: `127.0.0.1:${port}`, metrics: telemetry.prometheusUrl }),
);

createInterface({ input: process.stdin }).on('close', () => void stop());
process.once('SIGTERM', () => void stop());

async function stop(): Promise<void> {
  await server.shutdown();
  await telemetry.shutdown();
  process.exit(0);
}
