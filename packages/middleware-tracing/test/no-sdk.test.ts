import { propagation, trace } from '@opentelemetry/api';
import {
  callScopeServerMiddleware,
  currentCallScope,
  currentInboundCall,
  forwardScopeMetadata,
  withInboundCall,
} from '@switchyard/nice-grpc';
import {
  createTestClient,
  createTestServiceImpl,
  type RunningTestServer,
  startServer,
  type TestClient,
} from '@switchyard/testing';
import { Metadata } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import { tracingClientMiddleware, tracingServerMiddleware } from '../src/index.js';
import {
  type Chain,
  type ExportedTracing,
  startChain,
  startExportedTracing,
  w3cPropagator,
} from './tracing.js';

// A sampled trace context the entry client sends, as an upstream hop with an SDK would.
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

let chain: Chain | undefined;
let tracing: ExportedTracing | undefined;
let server: RunningTestServer | undefined;
let client: TestClient | undefined;

afterEach(async () => {
  client?.close();
  await server?.stop();
  await chain?.close();
  await tracing?.close();
  trace.disable();
  propagation.disable();
  chain = tracing = server = client = undefined;
});

/** A server with only the tracing middleware, whose responses say whether a call scope was open. */
async function startScopeReporter(): Promise<TestClient> {
  server = await startServer({
    middleware: [tracingServerMiddleware()],
    serverOptions: withInboundCall(),
    implementation: (backend) => ({
      ...createTestServiceImpl({ backend }),
      async unary() {
        const state =
          currentCallScope() !== undefined
            ? 'scope'
            : currentInboundCall() !== undefined
              ? 'inbound call'
              : 'no scope';
        return { backend: state };
      },
    }),
  });
  client = createTestClient(server.address, { middleware: [tracingClientMiddleware()] });
  return client;
}

describe('tracing with no SDK: no tracer provider or propagator registered', () => {
  it('steps aside: the server enters no call scope; the handler sees only the interceptor', async () => {
    const { client } = await startScopeReporter();
    expect((await client.unary({})).backend).toBe('inbound call');
  });

  it('lets a call scope pass the caller’s trace context on unchanged through every hop', async () => {
    chain = await startChain(
      () => [callScopeServerMiddleware(), tracingServerMiddleware()],
      () => [forwardScopeMetadata, tracingClientMiddleware()],
    );
    const response = await chain.entry.client.unary(
      { echoMetadata: ['traceparent'] },
      { metadata: Metadata({ traceparent: TRACEPARENT }) },
    );
    expect(response.backend).toBe('a>b>c');
    // C received what the entry client sent, as a non-recording span would have passed it on.
    expect(response.metadata).toEqual({ traceparent: TRACEPARENT });
  });

  it('records spans once an SDK registers, even after the middleware was created', async () => {
    const { client } = await startScopeReporter();
    // With no SDK nothing opens a scope in the state the interceptor entered.
    expect((await client.unary({})).backend).toBe('inbound call');

    tracing = await startExportedTracing();
    trace.setGlobalTracerProvider(tracing.provider);
    propagation.setGlobalPropagator(w3cPropagator);
    expect((await client.unary({})).backend).toBe('scope');
    const spans = await tracing.flush();
    expect(spans.map((s) => s.kind).sort()).toEqual(['CLIENT', 'SERVER']);
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    const clientSpan = spans.find((s) => s.kind === 'CLIENT');
    expect(spans.find((s) => s.kind === 'SERVER')?.parentSpanId).toBe(clientSpan?.spanId);
  });
});
