/**
 * Switchyard demo: a client calls a frontend server, whose handler calls one of three backends.
 * The frontend's handler never touches the trace context, yet every backend sees the client's
 * `traceparent`: the call scope carries it from the inbound call to the outgoing one.
 */
import { callScopeServerMiddleware, forwardScopeMetadata } from '@switchyard/nice-grpc';
import {
  createTestServiceImpl,
  startServer,
  startServers,
  TestServiceDefinition,
} from '@switchyard/testing';
import { createChannel, createClient, createClientFactory, Metadata } from 'nice-grpc';

const backends = await startServers(3, { backends: ['backend-a', 'backend-b', 'backend-c'] });
const backendClients = backends.addresses.map((address) =>
  createClientFactory()
    .use(forwardScopeMetadata)
    .create(TestServiceDefinition, createChannel(address)),
);

let next = 0;
const frontend = await startServer({
  backend: 'frontend',
  middleware: [callScopeServerMiddleware()],
  implementation: (backend) => ({
    ...createTestServiceImpl({ backend }),
    // Application code: no trace plumbing here.
    async unary(request) {
      const client = backendClients[next++ % backendClients.length]!;
      return client.unary({ payload: request.payload, echoMetadata: ['traceparent'] });
    },
  }),
});

const client = createClient(TestServiceDefinition, createChannel(frontend.address));
console.log(`frontend ${frontend.address} → backends ${backends.addresses.join(', ')}\n`);
console.log(
  'call  traceparent sent by the client                          served by   traceparent seen there',
);
let failures = 0;
for (let i = 1; i <= 6; i++) {
  const traceparent = `00-${crypto.randomUUID().replaceAll('-', '')}-${i.toString(16).padStart(16, '0')}-01`;
  const response = await client.unary(
    { payload: `hello ${i}` },
    { metadata: Metadata({ traceparent }) },
  );
  const seen = response.metadata.traceparent;
  if (seen !== traceparent) failures++;
  console.log(
    `${String(i).padEnd(5)} ${traceparent}  ${response.backend.padEnd(11)} ${seen === traceparent ? 'same ✓' : `DIFFERENT: ${seen}`}`,
  );
}

await frontend.stop();
await backends.stop();
if (failures > 0) {
  console.error(`\n${failures} call(s) lost their trace context`);
  process.exit(1);
}
console.log('\nEvery backend saw the trace context of the call that caused its call.');
