import { withInboundCall } from '@switchyard/nice-grpc';
import { type MetricFamily, seriesWith, type TestServiceClient } from '@switchyard/testing';
import { type ClientError, Metadata, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import type { MetricsOptions } from '../src/index.js';
import { measuredCallsPerTest } from './harness.js';

const SERVICE = 'switchyard.testing.v1.TestService';

const measured = measuredCallsPerTest();

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
});

describe('OTEL_SEMCONV_STABILITY_OPT_IN', () => {
  const saved = process.env.OTEL_SEMCONV_STABILITY_OPT_IN;
  afterEach(() => {
    if (saved === undefined) delete process.env.OTEL_SEMCONV_STABILITY_OPT_IN;
    else process.env.OTEL_SEMCONV_STABILITY_OPT_IN = saved;
  });

  it.each([
    [undefined, ['rpc_client_duration', 'rpc_server_duration']],
    ['rpc', ['rpc_client_call_duration', 'rpc_server_call_duration']],
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
