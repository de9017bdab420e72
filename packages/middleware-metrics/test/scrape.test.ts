import { createRetryMiddleware } from '@switchyard/middleware-retry';
import { withInboundCall } from '@switchyard/nice-grpc';
import {
  CleanupSteps,
  createTestServiceImpl,
  type MetricFamily,
  seriesWith,
  startServer,
  type TestServiceClient,
  TestServiceDefinition,
} from '@switchyard/testing';
import { createChannel, createClientFactory } from 'nice-grpc';
import { type ClientError, Metadata, ServerError, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import { type MetricsOptions, metricsClientMiddleware } from '../src/index.js';
import { measuredCallsPerTest } from './harness.js';

const SERVICE = 'switchyard.testing.v1.TestService';

const measured = measuredCallsPerTest();
const measuredCleanup = new CleanupSteps();
afterEach(() => measuredCleanup.run());

function start(metrics: MetricsOptions) {
  return measured.start({
    metrics,
    target: true,
    // Lets the server tell a deadline from a cancellation (grpc-js strips grpc-timeout).
    serverOptions: withInboundCall(),
  });
}

/** 4 OK, 3 NOT_FOUND and 2 DEADLINE_EXCEEDED unary calls, all finished. */
async function knownMix(client: TestServiceClient): Promise<void> {
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < 4; i++) calls.push(client.unary({ payload: `ok-${i}` }));
  for (let i = 0; i < 3; i++) {
    calls.push(
      client.unary({ statusCode: Status.NOT_FOUND, statusMessage: 'no such thing' }).then(
        () => Promise.reject(new Error('expected NOT_FOUND')),
        (error) => expect(error).toMatchObject({ code: Status.NOT_FOUND }),
      ),
    );
  }
  for (let i = 0; i < 2; i++) {
    // nice-grpc's client has no deadline option: the header is what a deadline middleware sends.
    const metadata = Metadata({ 'grpc-timeout': '50m' });
    calls.push(
      client.unary({ delayMs: 2_000 }, { metadata }).then(
        () => Promise.reject(new Error('expected DEADLINE_EXCEEDED')),
        (error: ClientError) => expect(error.code).toBe(Status.DEADLINE_EXCEEDED),
      ),
    );
  }
  await Promise.all(calls);
}

function histogram(families: Map<string, MetricFamily>, name: string) {
  const family = families.get(name);
  if (family === undefined) throw new Error(`no ${name} in the scrape`);
  expect(family.type).toBe('histogram');
  return family.histograms;
}

describe('a Prometheus scrape after OK / NOT_FOUND / DEADLINE_EXCEEDED calls', () => {
  it('shows legacy and stable OpenTelemetry histograms and counters with the expected labels and counts', async () => {
    const { server, client } = await start({ semconvStability: { legacy: true, stable: true } });
    await knownMix(client);
    // The server records a deadline-exceeded call when grpc-js aborts it, possibly after the
    // client has seen the status; wait until the server has nothing in flight.
    await expect
      .poll(
        async () =>
          (await measured.meter.scrape()).get('rpc_server_active_calls')?.samples[0]?.value,
      )
      .toBe(0);
    const families = await measured.meter.scrape();

    // Stable conventions: seconds, full method name, string status, error.type on errors only.
    const stable = histogram(families, 'rpc_server_call_duration');
    expect(families.get('rpc_server_call_duration')?.unit).toBe('s');
    const method = { rpc_system_name: 'grpc', rpc_method: `${SERVICE}/Unary` };
    const ok = seriesWith(stable, { ...method, rpc_response_status_code: 'OK' });
    expect(ok.count).toBe(4);
    expect(ok.labels.error_type).toBeUndefined();
    const notFound = seriesWith(stable, { ...method, rpc_response_status_code: 'NOT_FOUND' });
    expect(notFound.count).toBe(3);
    // NOT_FOUND is the server doing its job: not a server error under the gRPC conventions.
    expect(notFound.labels.error_type).toBeUndefined();
    const late = seriesWith(stable, {
      ...method,
      rpc_response_status_code: 'DEADLINE_EXCEEDED',
      error_type: 'DEADLINE_EXCEEDED',
    });
    expect(late.count).toBe(2);
    // The OK calls took nowhere near a second.
    expect(ok.buckets.find(([le]) => le === 1)?.[1]).toBe(4);
    expect(stable).toHaveLength(3);

    // Legacy conventions: milliseconds, service and short method, numeric status code.
    const legacy = histogram(families, 'rpc_server_duration');
    expect(families.get('rpc_server_duration')?.unit).toBe('ms');
    const legacyMethod = { rpc_system: 'grpc', rpc_service: SERVICE, rpc_method: 'Unary' };
    expect(seriesWith(legacy, { ...legacyMethod, rpc_grpc_status_code: '0' }).count).toBe(4);
    expect(seriesWith(legacy, { ...legacyMethod, rpc_grpc_status_code: '5' }).count).toBe(3);
    expect(seriesWith(legacy, { ...legacyMethod, rpc_grpc_status_code: '4' }).count).toBe(2);
    expect(families.get('rpc_server_duration')?.histograms[0]?.buckets[0]?.[0]).toBe(0.1);

    // Client side: every non-OK status is an error; server.address/port come from the target.
    const clientSide = histogram(families, 'rpc_client_call_duration');
    const clientMethod = {
      ...method,
      server_address: '127.0.0.1',
      server_port: String(server.port),
    };
    expect(seriesWith(clientSide, { ...clientMethod, rpc_response_status_code: 'OK' }).count).toBe(
      4,
    );
    expect(
      seriesWith(clientSide, {
        ...clientMethod,
        rpc_response_status_code: 'NOT_FOUND',
        error_type: 'NOT_FOUND',
      }).count,
    ).toBe(3);
    const clientLate = seriesWith(clientSide, {
      ...clientMethod,
      rpc_response_status_code: 'DEADLINE_EXCEEDED',
    });
    expect(clientLate.count).toBe(2);
    // The client waited out the 50 ms deadline: the histogram holds real durations.
    expect(clientLate.sum).toBeGreaterThanOrEqual(2 * 0.05);
    expect(clientLate.buckets.find(([le]) => le === 0.025)?.[1]).toBe(0);

    // Calls started and in flight, per method.
    for (const side of ['server', 'client']) {
      const started = families.get(`rpc_${side}_call_started_total`);
      expect(started?.type).toBe('counter');
      expect(seriesWith(started?.samples ?? [], method).value).toBe(9);
      const active = families.get(`rpc_${side}_active_calls`);
      expect(active?.type).toBe('gauge');
      expect(seriesWith(active?.samples ?? [], method).value).toBe(0);
    }
    // Unary calls record no per-stream message histograms.
    expect(families.get('rpc_server_requests_per_rpc')?.histograms ?? []).toEqual([]);
  });

  it('shows go-grpc-prometheus names and labels when asked, so existing dashboards keep working', async () => {
    const { client } = await start({ naming: 'go-grpc-prometheus' });
    await knownMix(client);
    await expect
      .poll(
        async () => (await measured.meter.scrape()).get('grpc_server_in_flight')?.samples[0]?.value,
      )
      .toBe(0);
    const families = await measured.meter.scrape();
    const labels = {
      grpc_type: 'unary',
      grpc_service: SERVICE,
      grpc_method: 'Unary',
      grpc_path: `/${SERVICE}/Unary`,
    };
    for (const side of ['server', 'client']) {
      const started = families.get(`grpc_${side}_started_total`);
      expect(started?.type).toBe('counter');
      expect(seriesWith(started?.samples ?? [], labels).value).toBe(9);
      const handled = families.get(`grpc_${side}_handled_total`);
      expect(handled?.type).toBe('counter');
      const byCode = Object.fromEntries(
        (handled?.samples ?? []).map((s) => [s.labels.grpc_code, s.value]),
      );
      expect(byCode).toEqual({ OK: 4, NOT_FOUND: 3, DEADLINE_EXCEEDED: 2 });
      const seconds = histogram(families, `grpc_${side}_handling_seconds`);
      expect(seriesWith(seconds, { ...labels, grpc_code: 'NOT_FOUND' }).count).toBe(3);
      expect(
        seriesWith(seconds, { ...labels, grpc_code: 'DEADLINE_EXCEEDED' }).sum,
      ).toBeGreaterThan(side === 'client' ? 0.09 : 0);
    }
    // Nothing in the OpenTelemetry vocabulary is emitted alongside.
    expect([...families.keys()].filter((name) => name.startsWith('rpc_'))).toEqual([]);
  });
  it('shows gRFC A66’s instruments when asked: grpc.server.call.*, grpc.client.attempt.*, grpc.client.call.duration', async () => {
    const { server, client } = await start({
      naming: 'grpc',
      services: [TestServiceDefinition],
    });
    await knownMix(client);
    // No in-flight gauge in A66: wait until the server has recorded the late calls.
    await expect
      .poll(async () => {
        const late = (await measured.meter.scrape()).get('grpc_server_call_duration');
        return seriesWith(late?.histograms ?? [], { grpc_status: 'DEADLINE_EXCEEDED' }).count;
      })
      .toBe(2);
    const families = await measured.meter.scrape();
    const method = { grpc_method: `${SERVICE}/Unary` };
    const target = { ...method, grpc_target: server.address };
    const counts = (name: string, labels: Record<string, string>) =>
      Object.fromEntries(
        histogram(families, name)
          .filter((h) => Object.entries(labels).every(([k, v]) => h.labels[k] === v))
          .map((h) => [h.labels.grpc_status, h.count]),
      );
    const mix = { OK: 4, NOT_FOUND: 3, DEADLINE_EXCEEDED: 2 };
    expect(counts('grpc_server_call_duration', method)).toEqual(mix);
    expect(counts('grpc_client_attempt_duration', target)).toEqual(mix);
    expect(counts('grpc_client_call_duration', target)).toEqual(mix);
    expect(families.get('grpc_server_call_duration')?.unit).toBe('s');
    // A66's buckets, from 0 to 100 s.
    const buckets = histogram(families, 'grpc_server_call_duration')[0]?.buckets ?? [];
    expect([buckets[0]?.[0], buckets[1]?.[0], buckets.at(-2)?.[0]]).toEqual([0, 0.00001, 100]);
    expect(
      seriesWith(families.get('grpc_server_call_started_total')?.samples ?? [], method).value,
    ).toBe(9);
    expect(
      seriesWith(families.get('grpc_client_attempt_started_total')?.samples ?? [], target).value,
    ).toBe(9);
    // Message sizes per server call and per client attempt, by status.
    for (const name of [
      'grpc_server_call_rcvd_total_compressed_message_size',
      'grpc_server_call_sent_total_compressed_message_size',
      'grpc_client_attempt_sent_total_compressed_message_size',
      'grpc_client_attempt_rcvd_total_compressed_message_size',
    ]) {
      expect(families.get(name)?.unit, name).toBe('By');
    }
    const sent = histogram(families, 'grpc_client_attempt_sent_total_compressed_message_size');
    expect(seriesWith(sent, { ...target, grpc_status: 'OK' }).count).toBe(4);
    expect(seriesWith(sent, { ...target, grpc_status: 'OK' }).sum).toBeGreaterThan(0);
    // Nothing of the other vocabularies alongside.
    expect(
      [...families.keys()].filter((name) => !name.startsWith('grpc_') || name.includes('handled')),
    ).toEqual([]);
  });

  it('A66 on clients: per attempt inside middleware-retry, per call outside it', async () => {
    const { meterProvider, scrape } = measured.meter;
    let calls = 0;
    const server = await startServer({
      implementation: (backend) => ({
        ...createTestServiceImpl({ backend }),
        async unary() {
          if (calls++ % 2 === 0) throw new ServerError(Status.UNAVAILABLE, 'every other call');
          return { backend };
        },
      }),
    });
    measuredCleanup.defer(() => server.stop());
    const channel = createChannel(server.address);
    measuredCleanup.defer(() => channel.close());
    const a66 = { meterProvider, naming: 'grpc', target: server.address } as const;
    const client = createClientFactory()
      .use(metricsClientMiddleware({ ...a66, level: 'attempt' }))
      .use(createRetryMiddleware())
      .use(metricsClientMiddleware({ ...a66, level: 'call' }))
      .create(TestServiceDefinition, channel);
    for (let i = 0; i < 3; i++) await client.unary({}, { retry: true, retryBaseDelayMs: 1 });
    const families = await scrape();
    const byStatus = (name: string) =>
      Object.fromEntries(histogram(families, name).map((h) => [h.labels.grpc_status, h.count]));
    expect(byStatus('grpc_client_attempt_duration')).toEqual({ UNAVAILABLE: 3, OK: 3 });
    expect(byStatus('grpc_client_call_duration')).toEqual({ OK: 3 });
    expect(families.get('grpc_client_attempt_started_total')?.samples[0]?.value).toBe(6);
  });
});

// The middleware emit the stable conventions by default (before issue 21, the legacy ones unless
// opted in); `rpc/dup` adds the legacy ones for a migration. The interceptors proxy-kit runs keep
// the environment's opt-in, legacy without one.
describe('OTEL_SEMCONV_STABILITY_OPT_IN', () => {
  const saved = process.env.OTEL_SEMCONV_STABILITY_OPT_IN;
  afterEach(() => {
    if (saved === undefined) delete process.env.OTEL_SEMCONV_STABILITY_OPT_IN;
    else process.env.OTEL_SEMCONV_STABILITY_OPT_IN = saved;
  });

  it.each([
    [undefined, ['rpc_client_call_duration', 'rpc_server_call_duration']],
    ['rpc', ['rpc_client_call_duration', 'rpc_server_call_duration']],
    ['http', ['rpc_client_call_duration', 'rpc_server_call_duration']],
    [
      'http,rpc/dup',
      [
        'rpc_client_call_duration',
        'rpc_client_duration',
        'rpc_server_call_duration',
        'rpc_server_duration',
      ],
    ],
  ])('=%s picks the duration histograms', async (value, histograms) => {
    if (value === undefined) delete process.env.OTEL_SEMCONV_STABILITY_OPT_IN;
    else process.env.OTEL_SEMCONV_STABILITY_OPT_IN = value;
    const { client } = await start({});
    await client.unary({});
    const families = await measured.meter.scrape();
    const names = [...families.values()]
      .filter((family) => family.type === 'histogram' && family.name.endsWith('duration'))
      .map((family) => family.name)
      .sort();
    expect(names).toEqual(histograms);
  });
});
