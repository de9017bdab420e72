/**
 * One catalog backend, with the whole Switchyard stack a service runs: mTLS with the caller's
 * verified identity and an authorization policy, metrics, traces, the inbound deadline, health
 * (`grpc.health.v1`, which proxy-kit checks), and a client to the pricing service that passes
 * the deadline and cancellation on and retries within them.
 *
 * Configured by its environment (the demo starts three):
 *   NAME            its name, in responses, traces (`service.name`) and metrics
 *   CERT_DIR        ca.pem, cert.pem and key.pem: its serving certificate and the CA of callers
 *   CALLER          the SPIFFE ID allowed to call it (proxy-kit's)
 *   PRICING         host:port of the pricing service
 *   OTEL_*          as @switchyard/telemetry reads them
 * Prints one JSON line once serving: {"name","address","metrics"}; then one per injected failure.
 * Reads commands on stdin: `slow <ms>` adds that much latency to every call; exits when stdin
 * closes, so it cannot outlive the demo.
 */
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { cancellationMiddleware } from '@switchyard/middleware-cancellation';
import { deadlineMiddleware, deadlineServerMiddleware } from '@switchyard/middleware-deadline';
import {
  HealthDefinition,
  HealthServiceImpl,
  HealthState,
  servingStateMiddleware,
} from '@switchyard/middleware-health';
import {
  authorizationServerMiddleware,
  compileAuthorizationPolicy,
  mtlsServerCredentials,
  peerIdentityServerMiddleware,
  watchCertificateFiles,
} from '@switchyard/middleware-identity';
import { metricsClientMiddleware, metricsServerMiddleware } from '@switchyard/middleware-metrics';
import {
  createRetryBudget,
  createRetryMiddleware,
  SWITCHYARD_RETRY_DEFAULTS,
} from '@switchyard/middleware-retry';
import { tracingClientMiddleware, tracingServerMiddleware } from '@switchyard/middleware-tracing';
import { GrpcError, withInboundCall } from '@switchyard/nice-grpc';
import { startTelemetry } from '@switchyard/telemetry';
import { createChannel, createClientFactory, createServer, ServerError, Status } from 'nice-grpc';
import { CatalogDefinition, type Hop, PricingDefinition } from './gen/demo/v1/catalog.js';

const name = process.env.NAME ?? 'catalog';
const certDir = required('CERT_DIR');
const caller = required('CALLER');
const pricingAddress = required('PRICING');

// Telemetry first: the middleware find the SDK through the global API when they are created.
const telemetry = await startTelemetry({ serviceName: name });
const services = [CatalogDefinition, HealthDefinition];

// Calls to pricing: metrics and a span per call, retries (Switchyard's behaviour, within the
// deadline and a budget), cancellation and the deadline left of the inbound call, minus 5 ms.
// On a client factory the last `use` runs first.
const pricingChannel = createChannel(pricingAddress);
const pricing = createClientFactory()
  .use(deadlineMiddleware)
  .use(cancellationMiddleware)
  .use(createRetryMiddleware({ budget: createRetryBudget(), defaults: SWITCHYARD_RETRY_DEFAULTS }))
  .use(tracingClientMiddleware({ services: [PricingDefinition], target: pricingAddress }))
  .use(metricsClientMiddleware({ services: [PricingDefinition], target: pricingAddress }))
  .create(PricingDefinition, pricingChannel);

let extraLatencyMs = 0;
const health = HealthState();
// On a server the first `use` runs first: metrics time everything, then the span, who called
// and whether they may, the deadline, and whether this backend is serving.
const server = createServer(withInboundCall())
  .use(metricsServerMiddleware({ services }))
  .use(tracingServerMiddleware({ services }))
  .use(peerIdentityServerMiddleware())
  .use(
    authorizationServerMiddleware({
      policy: compileAuthorizationPolicy({ rules: [{ methods: ['**'], identities: [caller] }] }),
    }),
  )
  .use(deadlineServerMiddleware)
  .use(servingStateMiddleware(health));

server.add(HealthDefinition, HealthServiceImpl(health));
server.add(CatalogDefinition, {
  async getItem(request, context) {
    const attempt = Number(context.metadata.get('grpc-previous-rpc-attempts') ?? 0) + 1;
    const hops: Hop[] = [{ service: name, deadlineLeftMs: msLeft(context.deadline) }];
    if (request.failFirstAttempt && attempt === 1) {
      console.log(JSON.stringify({ event: 'failed', id: request.id }));
      throw new ServerError(Status.UNAVAILABLE, `${name} is restarting (injected)`);
    }
    // The work: a few milliseconds, plus what `slow` asked for.
    await sleep(2 + Math.random() * 4 + extraLatencyMs, undefined, { signal: context.signal });
    if (request.quote) {
      try {
        const quote = await pricing.getQuote({ id: request.id });
        hops.push({ service: quote.service, deadlineLeftMs: quote.deadlineLeftMs });
      } catch (error) {
        throw GrpcError.from(error);
      }
    }
    return { id: request.id, backend: name, attempt, hops };
  },
});

const files = await watchCertificateFiles({
  caFile: join(certDir, 'ca.pem'),
  certFile: join(certDir, 'cert.pem'),
  keyFile: join(certDir, 'key.pem'),
});
const port = await server.listen('127.0.0.1:0', mtlsServerCredentials(files));
// Ready once pricing answers: its connection is up before the first call that needs it.
await pricing.getQuote({ id: 'warm-up' });
console.log(
  JSON.stringify({ name, address: `127.0.0.1:${port}`, metrics: telemetry.prometheusUrl }),
);

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const [command, value] = line.split(' ');
    if (command === 'slow') extraLatencyMs = Number(value);
  })
  .on('close', () => void stop());

process.once('SIGTERM', () => void stop());

async function stop(): Promise<void> {
  health.drain();
  await server.shutdown();
  pricingChannel.close();
  await telemetry.shutdown();
  process.exit(0);
}

function msLeft(deadline: Date | undefined): number {
  return deadline === undefined ? -1 : Math.round(deadline.getTime() - Date.now());
}

function required(variable: string): string {
  const value = process.env[variable];
  if (value === undefined) throw new Error(`${variable} is not set`);
  return value;
}
