// Sends a mix of calls to the frontend, so there is something to see in Jaeger and Prometheus:
// mostly quick successes, some NOT_FOUND from the inventory, some too slow for their deadline.
//   FRONTEND  host:port of the frontend   default localhost:50051
//   CALLS     how many calls              default 200
//   DEADLINE  each call's deadline, ms    default 500 (the slow calls take 500 ms longer)
// Its own spans (service "loadgen") are the roots of the traces.
import { deadlineMiddleware } from '@switchyard/middleware-deadline';
import { tracingClientMiddleware } from '@switchyard/middleware-tracing';
import { startTelemetry } from '@switchyard/telemetry';
import { TestServiceDefinition } from '@switchyard/testing';
import { createChannel, createClientFactory } from 'nice-grpc';
import { ClientError, Status } from 'nice-grpc-common';

const frontend = process.env.FRONTEND ?? 'localhost:50051';
const calls = Number(process.env.CALLS ?? 200);
const deadline = Number(process.env.DEADLINE ?? 500);

const telemetry = await startTelemetry({
  serviceName: process.env.OTEL_SERVICE_NAME ?? 'loadgen',
  prometheus: false,
});
const channel = createChannel(frontend);
const client = createClientFactory()
  .use(deadlineMiddleware)
  .use(tracingClientMiddleware({ target: frontend }))
  .create(TestServiceDefinition, channel);

const outcomes = new Map<string, number>();
for (let i = 0; i < calls; i++) {
  const kind = i % 10;
  const request =
    kind === 8
      ? { payload: `order-${i}`, statusCode: Status.NOT_FOUND, statusMessage: 'no such item' }
      : kind === 9
        ? { payload: `order-${i}`, delayMs: deadline + 500 }
        : { payload: `order-${i}`, delayMs: kind };
  let outcome = 'OK';
  try {
    await client.unary(request, { deadline });
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    outcome = Status[error.code];
  }
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
}
console.log(JSON.stringify(Object.fromEntries(outcomes)));
channel.close();
await telemetry.shutdown();
