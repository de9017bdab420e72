import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { ReceivedSpan } from '@switchyard/testing';
import { createTestClient } from '@switchyard/testing';
import { Metadata, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import { tracingClientMiddleware, tracingServerMiddleware } from '../src/index.js';
import {
  type Chain,
  type ExportedTracing,
  startChain,
  startExportedTracing,
  w3cPropagator,
} from './tracing.js';

const SERVICE = 'switchyard.testing.v1.TestService';

let tracing: ExportedTracing;
let chain: Chain;

afterEach(async () => {
  await chain?.close();
  await tracing?.close();
  context.disable();
});

async function start(semconv = { legacy: true, stable: false }): Promise<void> {
  tracing = await startExportedTracing();
  const common = {
    tracerProvider: tracing.provider,
    propagator: w3cPropagator,
    semconvStability: semconv,
  };
  chain = await startChain(
    () => [tracingServerMiddleware(common)],
    (target) => [tracingClientMiddleware({ ...common, target })],
  );
}

/** Orders a trace's spans from the root down, checking each has exactly one child. */
function path(spans: ReceivedSpan[]): ReceivedSpan[] {
  const [root, ...others] = spans.filter((s) => s.parentSpanId === '');
  expect(others).toEqual([]);
  const ordered = [root as ReceivedSpan];
  for (;;) {
    const last = ordered.at(-1) as ReceivedSpan;
    const children = spans.filter((s) => s.parentSpanId === last.spanId);
    if (children.length === 0) break;
    expect(children).toHaveLength(1);
    ordered.push(children[0] as ReceivedSpan);
  }
  expect(ordered).toHaveLength(spans.length);
  return ordered;
}

describe('A → B → C with tracing, exported over OTLP/HTTP protobuf', () => {
  it('forms one trace: client span → server span at each hop, with no context manager installed', async () => {
    await start();
    const response = await chain.entry.client.unary(
      { payload: 'order-1', echoMetadata: ['traceparent', 'baggage'] },
      { metadata: Metadata({ baggage: 'tenant=acme' }) },
    );
    expect(response.backend).toBe('a>b>c');
    const spans = await tracing.flush();
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    expect(tracing.receiver.requests.every((r) => r.contentType === 'application/x-protobuf')).toBe(
      true,
    );

    const ordered = path(spans);
    expect(ordered.map((s) => s.kind)).toEqual([
      'CLIENT',
      'SERVER',
      'CLIENT',
      'SERVER',
      'CLIENT',
      'SERVER',
    ]);
    for (const span of ordered) {
      expect(span.name).toBe(`${SERVICE}/Unary`);
      expect(span.scope).toBe('@switchyard/middleware-tracing');
      expect(span.status).toEqual({ code: 'UNSET', message: '' });
      expect(span.attributes).toMatchObject({
        'rpc.system': 'grpc',
        'rpc.service': SERVICE,
        'rpc.method': 'Unary',
        'rpc.grpc.status_code': Status.OK,
      });
    }
    // Each client span names the hop it called; each server span its caller's address.
    const [a, b, c] = chain.servers.map((s) => s.port);
    expect(
      ordered.filter((s) => s.kind === 'CLIENT').map((s) => s.attributes['server.port']),
    ).toEqual([a, b, c]);
    for (const span of ordered.filter((s) => s.kind === 'SERVER')) {
      expect(span.attributes['network.peer.address']).toBe('127.0.0.1');
      expect(span.attributes['network.peer.port']).toEqual(expect.any(Number));
    }
    // Children start after and end before their parents. The SDK anchors each trace's clock
    // on Date.now(), so allow its millisecond granularity.
    const slack = 2_000_000n;
    for (let i = 1; i < ordered.length; i++) {
      const [parent, child] = [ordered[i - 1] as ReceivedSpan, ordered[i] as ReceivedSpan];
      expect(child.startNanos + slack >= parent.startNanos).toBe(true);
      expect(child.endNanos <= parent.endNanos + slack).toBe(true);
    }
    // What C received: the trace context of B's client span, and the caller's baggage.
    const bClient = ordered[4] as ReceivedSpan;
    expect(response.metadata.traceparent).toBe(`00-${bClient.traceId}-${bClient.spanId}-01`);
    expect(response.metadata.baggage).toBe('tenant=acme');
  });

  it('continues a trace started elsewhere, tracestate and baggage included', async () => {
    await start();
    // A caller without this middleware (another language, a proxy) sends the W3C headers.
    const caller = createTestClient(chain.servers[0]?.address as string);
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const response = await caller.client.unary(
      { echoMetadata: ['traceparent', 'tracestate', 'baggage'] },
      {
        metadata: Metadata({
          traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
          tracestate: 'vendor=opaque',
          baggage: 'tenant=initech',
        }),
      },
    );
    caller.close();
    const ordered = path(
      (await tracing.flush()).map((s) =>
        s.parentSpanId === '00f067aa0ba902b7' ? { ...s, parentSpanId: '' } : s,
      ),
    );
    expect(ordered.map((s) => s.kind)).toEqual(['SERVER', 'CLIENT', 'SERVER', 'CLIENT', 'SERVER']);
    expect(ordered.every((s) => s.traceId === traceId && s.traceState === 'vendor=opaque')).toBe(
      true,
    );
    expect(response.metadata).toEqual({
      traceparent: `00-${traceId}-${ordered[3]?.spanId}-01`,
      tracestate: 'vendor=opaque',
      baggage: 'tenant=initech',
    });
  });

  it('marks client spans of a NOT_FOUND chain as errors and server spans not, with the status code', async () => {
    await start({ legacy: false, stable: true });
    await expect(
      chain.entry.client.unary({ statusCode: Status.NOT_FOUND, statusMessage: 'no order 7' }),
    ).rejects.toMatchObject({ code: Status.NOT_FOUND });
    const ordered = path(await tracing.flush());
    expect(ordered).toHaveLength(6);
    for (const span of ordered) {
      expect(span.attributes).toMatchObject({
        'rpc.system.name': 'grpc',
        'rpc.method': `${SERVICE}/Unary`,
        'rpc.response.status_code': 'NOT_FOUND',
      });
      if (span.kind === 'CLIENT') {
        expect(span.status).toEqual({ code: 'ERROR', message: 'no order 7' });
        expect(span.attributes['error.type']).toBe('NOT_FOUND');
        expect(span.events.map((e) => e.name)).toEqual(['exception']);
      } else {
        expect(span.status.code).toBe('UNSET');
        expect(span.attributes['error.type']).toBeUndefined();
      }
    }
  });

  it('nests under the active span when a context manager is installed, and carries its baggage', async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    await start();
    const tracer = tracing.provider.getTracer('checkout');
    const bag = propagation.createBaggage({ tenant: { value: 'globex' } });
    const response = await context.with(propagation.setBaggage(context.active(), bag), () =>
      tracer.startActiveSpan('checkout', async (span) => {
        try {
          return await chain.entry.client.unary({ echoMetadata: ['baggage'] });
        } finally {
          span.end();
        }
      }),
    );
    expect(response.metadata.baggage).toBe('tenant=globex');
    const ordered = path(await tracing.flush());
    expect(ordered.map((s) => [s.name, s.kind])).toEqual([
      ['checkout', 'INTERNAL'],
      ...Array(3)
        .fill([
          [`${SERVICE}/Unary`, 'CLIENT'],
          [`${SERVICE}/Unary`, 'SERVER'],
        ])
        .flat(),
    ]);
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
