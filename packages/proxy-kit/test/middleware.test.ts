import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { parseGrpcTimeout, Status } from '@switchyard/core';
import { staticDiscovery } from '@switchyard/discovery';
import { deadlineServerMiddleware } from '@switchyard/middleware-deadline';
import { withInboundCall } from '@switchyard/nice-grpc';
import {
  CleanupSteps,
  createConnectClient,
  createTestClient,
  createTestServiceImpl,
  generateTestPki,
  PYTHON_GRPC_MISSING,
  parsePrometheusText,
  pythonGrpcAvailable,
  runPythonClient,
  startServer,
  TEST_CLIENT_SPIFFE_ID,
  type TestPki,
} from '@switchyard/testing';
import { ClientError, Metadata, ServerError } from 'nice-grpc-common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ProxyOptions, type RunningProxy, startProxy } from '../src/index.js';
import { grpcFrame, rawCall, startRawBackend } from './support/raw-http2.js';

// The proxy runs in this process, so the meter provider registered here is the proxy's own: the
// retry and attempt counts below are read from what the proxy reports, scraped as Prometheus
// text and parsed strictly.
const exporter = new PrometheusExporter({ preventServerStart: true, withoutTargetInfo: true });
const meterProvider = new MeterProvider({ readers: [exporter] });
metrics.setGlobalMeterProvider(meterProvider);
const scrapeServer = createServer((request, response) =>
  exporter.getMetricsRequestHandler(request, response),
);

async function scrape() {
  const port = (scrapeServer.address() as AddressInfo).port;
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  return parsePrometheusText(await response.text());
}

/** A counter's total, or a histogram's count, over the series whose labels include `labels`. */
function total(
  families: Awaited<ReturnType<typeof scrape>>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.get(name);
  if (family === undefined) return 0;
  const matches = (series: { labels: Record<string, string> }) =>
    Object.entries(labels).every(([key, value]) => series.labels[key] === value);
  if (family.histograms.length > 0) {
    return family.histograms.filter(matches).reduce((sum, histogram) => sum + histogram.count, 0);
  }
  return family.samples.filter(matches).reduce((sum, sample) => sum + sample.value, 0);
}

beforeAll(async () => {
  scrapeServer.listen(0, '127.0.0.1');
  await once(scrapeServer, 'listening');
});

afterAll(async () => {
  scrapeServer.close();
  await meterProvider.shutdown();
});

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

async function proxy(options: Omit<ProxyOptions, 'listen'> & { listen?: ProxyOptions['listen'] }) {
  const running = await startProxy({ listen: '127.0.0.1:0', ...options });
  cleanup.defer(() => running.close(1000));
  return running;
}

function address(running: RunningProxy): string {
  return `127.0.0.1:${running.address.port}`;
}

/** A backend that answers with the time its handler has left, as grpc-js parsed it. */
async function deadlineBackend() {
  const backend = await startServer({
    backend: 'deadline',
    serverOptions: withInboundCall(),
    middleware: [deadlineServerMiddleware],
    implementation: (name) => ({
      ...createTestServiceImpl({ backend: name }),
      async unary(_request, context) {
        const left = (context as unknown as { timeoutMs(): number | undefined }).timeoutMs();
        return { backend: name, payload: String(left), sequence: 0, metadata: {} };
      },
    }),
  });
  cleanup.defer(() => backend.stop());
  return backend;
}

describe('deadline through the proxy', () => {
  it('the upstream sees what is left of the client’s deadline, minus the offset', async () => {
    const backend = await deadlineBackend();
    const running = await proxy({ discovery: staticDiscovery([backend.address]) });
    const { client, close } = createTestClient(address(running));
    cleanup.defer(close);
    const response = await client.unary({}, { metadata: Metadata({ 'grpc-timeout': '800m' }) });
    const left = Number(response.payload);
    expect(left).toBeLessThanOrEqual(800 - 5);
    expect(left).toBeGreaterThan(700);
  });

  it('caps it at the route’s timeout, and gives calls without one exactly that', async () => {
    const backend = await deadlineBackend();
    const running = await proxy({
      discovery: staticDiscovery([backend.address]),
      routes: [{ methods: ['switchyard.testing.v1.TestService/*'], timeoutMs: 300 }],
    });
    const { client, close } = createTestClient(address(running));
    cleanup.defer(close);
    const capped = await client.unary({}, { metadata: Metadata({ 'grpc-timeout': '10S' }) });
    const none = await client.unary({});
    for (const response of [capped, none]) {
      expect(Number(response.payload)).toBeLessThanOrEqual(300);
      expect(Number(response.payload)).toBeGreaterThan(200);
    }
  });

  it('from foreign clients: Python grpcio and connect-node', async (context) => {
    const backend = await deadlineBackend();
    const running = await proxy({ discovery: staticDiscovery([backend.address]) });
    const connect = createConnectClient(address(running));
    cleanup.defer(() => connect.close());
    const viaConnect = await connect.client.unary({}, { timeoutMs: 600 });
    expect(Number(viaConnect.payload)).toBeLessThanOrEqual(595);
    expect(Number(viaConnect.payload)).toBeGreaterThan(450);
    if (!(await pythonGrpcAvailable())) {
      context.skip(PYTHON_GRPC_MISSING);
      return;
    }
    const viaPython = await runPythonClient(
      address(running),
      { method: 'Unary', requests: [{}] },
      { timeoutMs: 600 },
    );
    expect(viaPython.status.code).toBe(Status.OK);
    expect(Number(viaPython.responses[0]?.payload)).toBeLessThanOrEqual(595);
    expect(Number(viaPython.responses[0]?.payload)).toBeGreaterThan(300);
  });

  it('ends a call whose deadline passes at the upstream with DEADLINE_EXCEEDED, and cancels it there', async () => {
    const cancelled: number[] = [];
    const backend = await startServer({
      backend: 'slow',
      implementation: (name) => ({
        ...createTestServiceImpl({ backend: name }),
        async unary(_request, { signal }) {
          await once(signal, 'abort');
          cancelled.push(Date.now());
          throw new ServerError(Status.CANCELLED, 'gave up');
        },
      }),
    });
    cleanup.defer(() => backend.stop());
    const running = await proxy({ discovery: staticDiscovery([backend.address]) });
    const { client, close } = createTestClient(address(running));
    cleanup.defer(close);
    const started = Date.now();
    const error = await client
      .unary({}, { metadata: Metadata({ 'grpc-timeout': '200m' }) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).code).toBe(Status.DEADLINE_EXCEEDED);
    await expect.poll(() => cancelled.length).toBe(1);
    // The upstream's budget was the client's minus the offset: it gave up first.
    expect(cancelled[0]! - started).toBeLessThan(200 + 50);
  });
});

describe('cancellation through the proxy', () => {
  async function observedBackend() {
    const aborted: number[] = [];
    const backend = await startServer({
      backend: 'observed',
      implementation: (name) => ({
        ...createTestServiceImpl({ backend: name }),
        async unary(_request, { signal }) {
          await once(signal, 'abort');
          aborted.push(performance.now());
          throw new ServerError(Status.CANCELLED, 'cancelled');
        },
        async *bidi(requests, { signal }) {
          for await (const request of requests) {
            yield { backend: name, payload: request.payload, sequence: 0, metadata: {} };
            if (signal.aborted) break;
          }
          if (!signal.aborted) await once(signal, 'abort');
          aborted.push(performance.now());
        },
      }),
    });
    cleanup.defer(() => backend.stop());
    return { backend, aborted };
  }

  it('a client abort reaches the upstream handler’s signal within 50 ms (unary)', async () => {
    const { backend, aborted } = await observedBackend();
    const running = await proxy({ discovery: staticDiscovery([backend.address]) });
    const { client, close } = createTestClient(address(running));
    cleanup.defer(close);
    const controller = new AbortController();
    const call = client.unary({}, { signal: controller.signal }).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const at = performance.now();
    controller.abort();
    await call;
    await expect.poll(() => aborted.length).toBe(1);
    expect(aborted[0]! - at).toBeLessThan(50);
  });

  it('a client abort reaches the upstream handler’s signal within 50 ms (bidi)', async () => {
    const { backend, aborted } = await observedBackend();
    const running = await proxy({ discovery: staticDiscovery([backend.address]) });
    const { client, close } = createTestClient(address(running));
    cleanup.defer(close);
    const controller = new AbortController();
    async function* requests() {
      yield { payload: 'one' };
      await new Promise((resolve) => setTimeout(resolve, 10_000));
    }
    const received: string[] = [];
    const call = (async () => {
      for await (const response of client.bidi(requests(), { signal: controller.signal })) {
        received.push(response.payload);
      }
    })().catch((e: unknown) => e);
    await expect.poll(() => received).toEqual(['one']);
    const at = performance.now();
    controller.abort();
    await call;
    await expect.poll(() => aborted.length).toBe(1);
    expect(aborted[0]! - at).toBeLessThan(50);
  });
});

/** A backend whose every call fails UNAVAILABLE, counting them. */
async function failingBackend(name: string) {
  let calls = 0;
  const backend = await startServer({
    backend: name,
    implementation: (backendName) => ({
      ...createTestServiceImpl({ backend: backendName }),
      async unary() {
        calls++;
        throw new ServerError(Status.UNAVAILABLE, `${backendName} is down`);
      },
    }),
  });
  cleanup.defer(() => backend.stop());
  return { backend, calls: () => calls };
}

describe('retries through the proxy', () => {
  const idempotentRoute = {
    methods: ['switchyard.testing.v1.TestService/*'],
    idempotent: true,
    retry: { maxAttempts: 2, codes: [Status.UNAVAILABLE] },
  };

  it('with one of three backends always UNAVAILABLE, an idempotent route answers every call', async () => {
    const down = await failingBackend('down');
    const healthy = await Promise.all(
      ['a', 'b'].map(async (name) => {
        const server = await startServer({ backend: name });
        cleanup.defer(() => server.stop());
        return server;
      }),
    );
    const running = await proxy({
      discovery: staticDiscovery([down.backend.address, ...healthy.map((s) => s.address)]),
      balancer: 'round-robin',
      // Left in the pool, so that every third first attempt meets it.
      outlier: { consecutiveFailures: 10_000 },
      routes: [idempotentRoute],
    });
    const { client, close } = createTestClient(address(running));
    cleanup.defer(close);
    const before = total(await scrape(), 'rpc_client_retry_attempts_total');
    const responses = await Promise.all(Array.from({ length: 150 }, () => client.unary({})));
    expect(responses.every((r) => r.backend === 'a' || r.backend === 'b')).toBe(true);
    expect(down.calls()).toBeGreaterThan(20);
    // Every failure was retried once, elsewhere, as the proxy's own metrics count it.
    const retries = total(await scrape(), 'rpc_client_retry_attempts_total') - before;
    expect(retries).toBe(down.calls());
  });

  it('when every backend fails, the attempts stay within the retry budget', async () => {
    const backends = await Promise.all(['x', 'y', 'z'].map(failingBackend));
    const budget = { ttlMs: 10_000, minRetriesPerSecond: 5, retryRatio: 0.2 };
    const running = await proxy({
      discovery: staticDiscovery(backends.map((b) => b.backend.address)),
      outlier: { consecutiveFailures: 10_000 },
      routes: [{ ...idempotentRoute, retryBudget: budget }],
    });
    const { client, close } = createTestClient(address(running));
    cleanup.defer(close);
    const families = await scrape();
    const sentBefore = total(families, 'rpc_client_call_duration');
    const calls = 300;
    const started = performance.now();
    const outcomes = await Promise.all(
      Array.from({ length: calls }, () =>
        client.unary({}).then(
          () => 'ok',
          (e: unknown) => (e as ClientError).code,
        ),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    expect(outcomes.every((code) => code === Status.UNAVAILABLE)).toBe(true);
    const after = await scrape();
    // What the proxy sent upstream, per its own per-endpoint client metrics.
    const attempts = total(after, 'rpc_client_call_duration') - sentBefore;
    const limit =
      calls * (1 + budget.retryRatio) +
      budget.minRetriesPerSecond * Math.max(seconds, budget.ttlMs / 1000);
    expect(attempts).toBeGreaterThanOrEqual(calls);
    expect(attempts).toBeLessThanOrEqual(limit);
    expect(attempts).toBe(backends.reduce((sum, b) => sum + b.calls(), 0));
    expect(total(after, 'rpc_client_retry_budget_exhausted_total')).toBeGreaterThan(0);
  });

  it('a route that is not idempotent does not retry a server’s UNAVAILABLE', async () => {
    const down = await failingBackend('down');
    const running = await proxy({ discovery: staticDiscovery([down.backend.address]) });
    const { client, close } = createTestClient(address(running));
    cleanup.defer(close);
    await expect(client.unary({})).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    expect(down.calls()).toBe(1);
  });
});

describe('hedging through the proxy', () => {
  it('a second attempt goes to another endpoint after the hedging delay, and the first answer wins', async () => {
    const cancelledOnSlow: string[] = [];
    const slow = await startServer({
      backend: 'slow',
      implementation: (name) => ({
        ...createTestServiceImpl({ backend: name }),
        async unary(request, { signal }) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          if (signal.aborted) cancelledOnSlow.push(request.payload);
          return { backend: name, payload: request.payload, sequence: 0, metadata: {} };
        },
      }),
    });
    const fast = await startServer({ backend: 'fast' });
    cleanup.defer(() => slow.stop());
    cleanup.defer(() => fast.stop());
    const running = await proxy({
      discovery: staticDiscovery([slow.address, fast.address]),
      balancer: 'round-robin',
      routes: [
        {
          methods: ['**'],
          idempotent: true,
          hedging: { maxAttempts: 2, delayMs: 20 },
        },
      ],
    });
    const { client, close } = createTestClient(address(running));
    cleanup.defer(close);
    // Connections up (client to proxy, proxy to both backends) before anything is timed.
    await Promise.all([client.unary({ payload: 'warm' }), client.unary({ payload: 'up' })]);
    const started = performance.now();
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.unary({ payload: String(i) })),
    );
    expect(responses.every((r) => r.backend === 'fast')).toBe(true);
    // No call waited for the slow backend's 200 ms.
    expect(performance.now() - started).toBeLessThan(200);
    await expect.poll(() => cancelledOnSlow.length).toBeGreaterThan(0);
  });
});

describe('identity through the proxy', () => {
  let pki: TestPki;
  const FRONTEND = 'spiffe://test.local/ns/shop/sa/frontend';

  beforeAll(async () => {
    pki = await generateTestPki();
  });

  /** A proxy terminating mTLS, and a backend that reports the identity header it received. */
  async function identityProxy(authorized: readonly string[]) {
    const backend = await startServer({ backend: 'seen' });
    cleanup.defer(() => backend.stop());
    const running = await proxy({
      listen: {
        address: '127.0.0.1:0',
        tls: {
          cert: pki.server.chainPem,
          key: pki.server.keyPem,
          ca: pki.ca.certPem,
          requestCert: true,
        },
      },
      discovery: staticDiscovery([backend.address]),
      routes: [
        {
          methods: ['switchyard.testing.v1.TestService/Unary'],
          authorization: { rules: [{ methods: ['**'], identities: authorized }] },
        },
        { methods: ['**'] },
      ],
    });
    return running;
  }

  function mtlsClient(running: RunningProxy, identity = pki.client) {
    const connect = createConnectClient(`localhost:${running.address.port}`, {
      tls: { ca: pki.ca.certPem, certPem: identity.chainPem, keyPem: identity.keyPem },
    });
    cleanup.defer(() => connect.close());
    return connect.client;
  }

  it('an allowed identity passes and the upstream sees the verified one, never a forged copy', async () => {
    const running = await identityProxy([TEST_CLIENT_SPIFFE_ID]);
    const client = mtlsClient(running);
    const response = await client.unary(
      { echoMetadata: ['l5d-client-id'] },
      { headers: { 'l5d-client-id': 'spiffe://test.local/ns/ops/sa/admin' } },
    );
    expect(response.metadata).toEqual({ 'l5d-client-id': TEST_CLIENT_SPIFFE_ID });
  });

  it('another identity gets PERMISSION_DENIED, and its forged header reaches no backend', async () => {
    const running = await identityProxy([FRONTEND]);
    const client = mtlsClient(running);
    await expect(client.unary({})).rejects.toMatchObject({ code: Status.PERMISSION_DENIED });
    // A method the policy does not cover still runs, with the caller named truthfully.
    const streamed: string[] = [];
    for await (const response of client.serverStream(
      { echoMetadata: ['l5d-client-id'] },
      { headers: { 'l5d-client-id': FRONTEND } },
    )) {
      streamed.push(response.metadata['l5d-client-id'] ?? '');
    }
    expect(streamed).toEqual([TEST_CLIENT_SPIFFE_ID]);
  });
});

describe('routes', () => {
  it('send each method to its upstream, and an unrouted method is UNIMPLEMENTED', async () => {
    const orders = await startServer({ backend: 'orders' });
    const rest = await startServer({ backend: 'rest' });
    cleanup.defer(() => orders.stop());
    cleanup.defer(() => rest.stop());
    const running = await proxy({
      discovery: staticDiscovery([rest.address]),
      upstreams: { orders: { discovery: staticDiscovery([orders.address]) } },
      routes: [
        { methods: ['switchyard.testing.v1.TestService/Unary'], upstream: 'orders' },
        { methods: ['switchyard.testing.v1.TestService/Server*'] },
      ],
    });
    const { client, close } = createTestClient(address(running));
    cleanup.defer(close);
    expect((await client.unary({})).backend).toBe('orders');
    const streamed: string[] = [];
    for await (const response of client.serverStream({})) streamed.push(response.backend);
    expect(streamed).toEqual(['rest']);
    await expect(client.clientStream((async function* () {})())).rejects.toMatchObject({
      code: Status.UNIMPLEMENTED,
    });
  });

  it('a malformed grpc-timeout is INTERNAL, and the call never reaches the upstream', async () => {
    let requests = 0;
    const backend = await startRawBackend(() => {
      requests++;
    });
    cleanup.defer(() => backend.close());
    const running = await proxy({ discovery: staticDiscovery([backend.address]) });
    const response = await rawCall(
      address(running),
      {
        ':path': '/switchyard.testing.v1.TestService/Unary',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': '5 seconds',
      },
      grpcFrame(Buffer.alloc(0)),
    );
    expect(response.headers['grpc-status']).toBe(String(Status.INTERNAL));
    expect(String(response.headers['grpc-message'])).toContain('grpc-timeout');
    expect(requests).toBe(0);
    expect(() => parseGrpcTimeout('5 seconds')).toThrow();
  });
});
