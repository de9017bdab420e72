// Sends a mix of calls to the frontend, so there is something to see in Jaeger and Prometheus:
// mostly quick successes, some NOT_FOUND from the inventory, some too slow for their deadline.
//   FRONTEND  host:port of the frontend   default 127.0.0.1:50051
//   CALLS     how many calls              default 200
//   DEADLINE  each call's deadline, ms    default 500 (the slow calls take 500 ms longer)
//   WAIT      how long to wait, ms, for the frontend to report SERVING   default 10000
// Its own spans (service "loadgen") are the roots of the traces.
import { deadlineMiddleware } from '@switchyard/middleware-deadline';
import { watchHealth } from '@switchyard/middleware-health';
import { tracingClientMiddleware } from '@switchyard/middleware-tracing';
import { startTelemetry } from '@switchyard/telemetry';
import { ClientError, createChannel, createClientFactory, Status } from 'nice-grpc';
import { ShopDefinition } from './gen/shop/v1/shop.js';

const frontend = process.env.FRONTEND ?? '127.0.0.1:50051';
const calls = Number(process.env.CALLS ?? 200);
const deadline = Number(process.env.DEADLINE ?? 500);
const wait = Number(process.env.WAIT ?? 10_000);

// The frontend is SERVING once every hop behind it is (see app.ts): wait for it, bounded.
let status = 'UNKNOWN';
const ready = await new Promise<boolean>((resolve) => {
  const done = (ok: boolean) => {
    clearTimeout(timer);
    health.close();
    resolve(ok);
  };
  const health = watchHealth({
    address: frontend,
    intervalMs: 200,
    timeoutMs: 500,
    onChange: ({ to }) => {
      status = to;
      if (to === 'SERVING') done(true);
    },
  });
  const timer = setTimeout(() => done(false), wait);
});
if (!ready) {
  console.error(`${frontend} did not report SERVING within ${wait} ms (${status})`);
  process.exit(1);
}

const telemetry = await startTelemetry({
  serviceName: process.env.OTEL_SERVICE_NAME ?? 'loadgen',
  prometheus: false,
});
const channel = createChannel(frontend);
const client = createClientFactory()
  .use(deadlineMiddleware)
  .use(tracingClientMiddleware({ target: frontend }))
  .create(ShopDefinition, channel);

const outcomes = new Map<string, number>();
for (let i = 0; i < calls; i++) {
  const kind = i % 10;
  const request = {
    orderId: `order-${i}`,
    missing: kind === 8,
    workMs: kind === 9 ? deadline + 500 : kind,
  };
  let outcome = 'OK';
  try {
    await client.getOrder(request, { deadline });
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    outcome = Status[error.code];
  }
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
}
console.log(JSON.stringify(Object.fromEntries(outcomes)));
channel.close();
// Spans are flushed here: a collector that is not there is reported, not thrown.
await telemetry.shutdown().catch((error: unknown) => {
  console.error(`exporting spans failed: ${error instanceof Error ? error.message : error}`);
});
