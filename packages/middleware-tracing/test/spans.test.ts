import {
  callScopeServerMiddleware,
  currentCallScope,
  withInboundCall,
} from '@switchyard/nice-grpc';
import type { ReceivedSpan } from '@switchyard/testing';
import {
  createTestClient,
  createTestServiceImpl,
  type RunningTestServer,
  startServer,
  type TestClient,
  TestServiceDefinition,
} from '@switchyard/testing';
import { createChannel, createClientFactory } from 'nice-grpc';
import { Metadata, ServerError, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import { tracingClientMiddleware, tracingServerMiddleware } from '../src/index.js';
import {
  type ExportedTracing,
  startChain,
  startExportedTracing,
  w3cPropagator,
} from './tracing.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function tracing(): Promise<ExportedTracing> {
  const exported = await startExportedTracing();
  cleanup.push(() => exported.close());
  return exported;
}

async function serve(
  exported: ExportedTracing,
  options: Parameters<typeof startServer>[0] = {},
): Promise<{ server: RunningTestServer; client: TestClient }> {
  const common = { tracerProvider: exported.provider, propagator: w3cPropagator };
  const server = await startServer({
    ...options,
    middleware: [...(options.middleware ?? []), tracingServerMiddleware(common)],
  });
  cleanup.push(() => server.stop());
  const client = createTestClient(server.address, {
    middleware: [tracingClientMiddleware(common)],
  });
  cleanup.push(() => client.close());
  return { server, client };
}

const byKind = (spans: ReceivedSpan[], kind: ReceivedSpan['kind']) =>
  spans.filter((s) => s.kind === kind);

describe('streams', () => {
  it('add one rpc.message event per message, numbered per direction', async () => {
    const exported = await tracing();
    const { client } = await serve(exported);
    for await (const _ of client.client.serverStream({ responseCount: 3 })) {
    }
    async function* three() {
      for (let i = 0; i < 3; i++) yield { payload: `${i}` };
    }
    for await (const _ of client.client.bidi(three())) {
    }
    const spans = await exported.flush();
    const events = (span: ReceivedSpan | undefined) =>
      span?.events.map((e) => [e.attributes['rpc.message.type'], e.attributes['rpc.message.id']]);
    const serverStream = spans.filter((s) => s.name.endsWith('/ServerStream'));
    expect(events(byKind(serverStream, 'SERVER')[0])).toEqual([
      ['SENT', 1],
      ['SENT', 2],
      ['SENT', 3],
    ]);
    expect(events(byKind(serverStream, 'CLIENT')[0])).toEqual([
      ['RECEIVED', 1],
      ['RECEIVED', 2],
      ['RECEIVED', 3],
    ]);
    const bidi = spans.filter((s) => s.name.endsWith('/Bidi'));
    const serverEvents = events(byKind(bidi, 'SERVER')[0]) ?? [];
    expect(serverEvents.filter(([type]) => type === 'RECEIVED').map(([, id]) => id)).toEqual([
      1, 2, 3,
    ]);
    expect(serverEvents.filter(([type]) => type === 'SENT').map(([, id]) => id)).toEqual([1, 2, 3]);
  });

  it('ends the client span as CANCELLED when the application stops reading', async () => {
    const exported = await tracing();
    const { client } = await serve(exported);
    for await (const _ of client.client.serverStream({ responseCount: 50, delayMs: 5 })) {
      break;
    }
    const [span] = byKind(await exported.flush(), 'CLIENT');
    expect(span?.attributes['rpc.grpc.status_code']).toBe(Status.CANCELLED);
    expect(span?.status.code).toBe('ERROR');
  });
});

describe('errors', () => {
  it('records an unexpected handler exception on the server span as UNKNOWN', async () => {
    const exported = await tracing();
    const { client } = await serve(exported, {
      implementation: (backend) => ({
        ...createTestServiceImpl({ backend }),
        async unary() {
          throw new TypeError('cannot read the order');
        },
      }),
    });
    await expect(client.client.unary({})).rejects.toMatchObject({ code: Status.UNKNOWN });
    const [span] = byKind(await exported.flush(), 'SERVER');
    expect(span?.status).toEqual({ code: 'ERROR', message: 'cannot read the order' });
    expect(span?.attributes['rpc.grpc.status_code']).toBe(Status.UNKNOWN);
    const exception = span?.events.find((e) => e.name === 'exception');
    expect(exception?.attributes).toMatchObject({
      'exception.type': 'TypeError',
      'exception.message': 'cannot read the order',
    });
  });

  it('reports DEADLINE_EXCEEDED on the server span when the client deadline expires', async () => {
    const exported = await tracing();
    const { client } = await serve(exported, { serverOptions: withInboundCall() });
    await expect(
      client.client.unary({ delayMs: 2_000 }, { metadata: Metadata({ 'grpc-timeout': '50m' }) }),
    ).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    await expect.poll(async () => byKind(await exported.flush(), 'SERVER').length).toBe(1);
    const [span] = byKind(exported.receiver.spans, 'SERVER');
    expect(span?.attributes['rpc.grpc.status_code']).toBe(Status.DEADLINE_EXCEEDED);
    expect(span?.status.code).toBe('ERROR');
  });
});

describe('malformed trace context', () => {
  it('starts a new trace instead of failing the call', async () => {
    const exported = await tracing();
    const server = await startServer({
      middleware: [
        tracingServerMiddleware({ tracerProvider: exported.provider, propagator: w3cPropagator }),
      ],
    });
    cleanup.push(() => server.stop());
    const client = createTestClient(server.address);
    cleanup.push(() => client.close());
    const metadata = Metadata({ traceparent: '00-zz-not-a-trace-01', baggage: '=;=,%%%' });
    await expect(client.client.unary({ payload: 'ok' }, { metadata })).resolves.toMatchObject({
      payload: 'ok',
    });
    const [span] = await exported.flush();
    expect(span?.parentSpanId).toBe('');
    expect(span?.traceId).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('method names', () => {
  it('names methods outside the given services _OTHER, with the real name in rpc.method_original', async () => {
    const exported = await tracing();
    const server = await startServer();
    cleanup.push(() => server.stop());
    const channel = createChannel(server.address);
    cleanup.push(() => channel.close());
    const unknown = { ...TestServiceDefinition.methods.unary, name: 'Refund' };
    const client = createClientFactory()
      .use(
        tracingClientMiddleware({
          tracerProvider: exported.provider,
          services: [TestServiceDefinition],
          semconvStability: { legacy: false, stable: true },
        }),
      )
      .create({ ...TestServiceDefinition, methods: { refund: unknown } }, channel);
    await expect(client.refund({})).rejects.toMatchObject({ code: Status.UNIMPLEMENTED });
    const [span] = await exported.flush();
    expect(span?.name).toBe('grpc');
    expect(span?.attributes).toMatchObject({
      'rpc.method': '_OTHER',
      'rpc.method_original': 'switchyard.testing.v1.TestService/Refund',
      'rpc.response.status_code': 'UNIMPLEMENTED',
      'error.type': 'UNIMPLEMENTED',
    });
  });
});

describe('the call scope', () => {
  it('keeps other forwarded headers when callScopeServerMiddleware runs first, replacing only the trace context', async () => {
    const exported = await tracing();
    let forwarded: Metadata | undefined;
    const { client } = await serve(exported, {
      middleware: [
        callScopeServerMiddleware({ forwardHeaders: ['traceparent', 'baggage', 'x-request-id'] }),
      ],
      implementation: (backend) => ({
        ...createTestServiceImpl({ backend }),
        async unary() {
          forwarded = currentCallScope()?.forwardMetadata;
          return {};
        },
      }),
    });
    await client.client.unary({}, { metadata: Metadata({ 'x-request-id': 'r-42' }) });
    const [server] = byKind(await exported.flush(), 'SERVER');
    expect(forwarded?.get('x-request-id')).toBe('r-42');
    expect(forwarded?.get('traceparent')).toBe(`00-${server?.traceId}-${server?.spanId}-01`);
  });

  it('passes the trace context on unchanged when no tracer provider is registered', async () => {
    // The global API is a no-op here: spans are not recorded, but the context must survive.
    const chain = await startChain(
      () => [tracingServerMiddleware({ propagator: w3cPropagator })],
      () => [tracingClientMiddleware({ propagator: w3cPropagator })],
    );
    cleanup.push(() => chain.close());
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const response = await chain.entry.client.unary(
      { echoMetadata: ['traceparent'] },
      { metadata: Metadata({ traceparent }) },
    );
    expect(response.metadata.traceparent).toBe(traceparent);
  });
});

describe('a status outside the spec', () => {
  it('is reported as UNKNOWN without breaking the span, though grpc-js passes it on', async () => {
    const exported = await tracing();
    const { client } = await serve(exported, {
      implementation: (backend) => ({
        ...createTestServiceImpl({ backend }),
        async unary() {
          throw new ServerError(99 as Status, 'a code from the future');
        },
      }),
    });
    await expect(client.client.unary({})).rejects.toMatchObject({ code: 99 });
    const spans = await exported.flush();
    expect(spans.map((s) => [s.kind, s.attributes['rpc.grpc.status_code']]).sort()).toEqual([
      ['CLIENT', Status.UNKNOWN],
      ['SERVER', Status.UNKNOWN],
    ]);
  });
});
