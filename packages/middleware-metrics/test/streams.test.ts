import {
  createTestServiceImpl,
  type HistogramSeries,
  type MetricFamily,
  seriesWith,
  TestRequest,
  TestResponse,
  TestServiceDefinition,
} from '@switchyard/testing';
import { ClientError, ServerError, type Status } from 'nice-grpc-common';
import { describe, expect, it } from 'vitest';
import {
  type MetricsOptions,
  metricsClientMiddleware,
  metricsServerMiddleware,
} from '../src/index.js';
import { measuredCallsPerTest } from './harness.js';

const SERVICE = 'switchyard.testing.v1.TestService';

const measured = measuredCallsPerTest();

function start(options: MetricsOptions = {}) {
  return measured.start({
    metrics: { ...options, semconvStability: { legacy: false, stable: true } },
  });
}

async function* requests(count: number, payload = 'x'): AsyncIterable<Partial<TestRequest>> {
  for (let i = 0; i < count; i++) yield { payload: `${payload}${i}` };
}

function histogramOf(families: Map<string, MetricFamily>, name: string, method: string) {
  return seriesWith(families.get(name)?.histograms ?? [], { rpc_method: `${SERVICE}/${method}` });
}

async function settledScrape(): Promise<Map<string, MetricFamily>> {
  await expect
    .poll(async () => {
      const active = (await measured.meter.scrape()).get('rpc_server_active_calls')?.samples ?? [];
      return active.every((sample) => sample.value === 0);
    })
    .toBe(true);
  return measured.meter.scrape();
}

describe('streaming calls', () => {
  it('record messages per call on both sides, for each kind of stream', async () => {
    const { client } = await start();
    for await (const _ of client.serverStream({ responseCount: 5 })) {
    }
    await client.clientStream(requests(3));
    for await (const _ of client.bidi(requests(4))) {
    }
    const families = await settledScrape();
    const counts = (name: string, method: string): [number, number] => {
      const series: HistogramSeries = histogramOf(families, name, method);
      return [series.count, series.sum];
    };
    // Server: requests are received, responses sent; one streaming call per method.
    expect(counts('rpc_server_requests_per_rpc', 'ServerStream')).toEqual([1, 1]);
    expect(counts('rpc_server_responses_per_rpc', 'ServerStream')).toEqual([1, 5]);
    expect(counts('rpc_server_requests_per_rpc', 'ClientStream')).toEqual([1, 3]);
    expect(counts('rpc_server_responses_per_rpc', 'ClientStream')).toEqual([1, 1]);
    expect(counts('rpc_server_requests_per_rpc', 'Bidi')).toEqual([1, 4]);
    expect(counts('rpc_server_responses_per_rpc', 'Bidi')).toEqual([1, 4]);
    // The client sees the same messages from the other end.
    expect(counts('rpc_client_requests_per_rpc', 'ClientStream')).toEqual([1, 3]);
    expect(counts('rpc_client_responses_per_rpc', 'ServerStream')).toEqual([1, 5]);
    expect(counts('rpc_client_responses_per_rpc', 'Bidi')).toEqual([1, 4]);
  });

  it('counts stream messages live under go-grpc-prometheus naming, before the stream ends', async () => {
    const { client } = await start({ naming: 'go-grpc-prometheus' });
    const responses = client.bidi(
      (async function* () {
        yield* requests(2);
        // Keep the stream open until the scrape below has been taken.
        await new Promise((resolve) => setTimeout(resolve, 300));
      })(),
    );
    const iterator = responses[Symbol.asyncIterator]();
    await iterator.next();
    await iterator.next();
    const families = await measured.meter.scrape();
    const labels = { grpc_type: 'bidi_stream', grpc_method: 'Bidi' };
    expect(
      seriesWith(families.get('grpc_server_msg_received_total')?.samples ?? [], labels).value,
    ).toBe(2);
    expect(
      seriesWith(families.get('grpc_server_msg_sent_total')?.samples ?? [], labels).value,
    ).toBe(2);
    expect(
      seriesWith(families.get('grpc_client_msg_sent_total')?.samples ?? [], labels).value,
    ).toBe(2);
    expect(seriesWith(families.get('grpc_server_in_flight')?.samples ?? [], labels).value).toBe(1);
    while (!(await iterator.next()).done) {}
  });

  it('records a client that stops reading early as CANCELLED', async () => {
    const { client } = await start();
    for await (const _ of client.serverStream({ responseCount: 100, delayMs: 5 })) {
      break;
    }
    const families = await settledScrape();
    const clientSide = families.get('rpc_client_call_duration')?.histograms ?? [];
    expect(
      seriesWith(clientSide, {
        rpc_method: `${SERVICE}/ServerStream`,
        rpc_response_status_code: 'CANCELLED',
      }).count,
    ).toBe(1);
    // The server saw its client go away: a cancellation, not a server error.
    const serverSide = families.get('rpc_server_call_duration')?.histograms ?? [];
    const cancelled = seriesWith(serverSide, {
      rpc_method: `${SERVICE}/ServerStream`,
      rpc_response_status_code: 'CANCELLED',
    });
    expect(cancelled.labels.error_type).toBeUndefined();
  });
});

describe('message sizes', () => {
  it('records the serialized bytes of every message of a call, per direction', async () => {
    const { client } = await start({ services: [TestServiceDefinition], messageSizes: true });
    const unary = { payload: 'hello', responseSize: 1000 };
    const unaryResponse = await client.unary(unary);
    const streamed: TestResponse[] = [];
    for await (const response of client.bidi(requests(3, 'payload-'))) {
      streamed.push(response);
    }
    const families = await settledScrape();
    const bytes = (
      message: TestRequest | TestResponse,
      type: typeof TestRequest | typeof TestResponse,
    ) => (type as typeof TestRequest).encode(message as TestRequest).finish().byteLength;
    const requestBytes = bytes(TestRequest.fromPartial(unary), TestRequest);
    const responseBytes = bytes(unaryResponse, TestResponse);
    expect(responseBytes).toBeGreaterThan(1000);
    expect(histogramOf(families, 'rpc_server_call_request_size', 'Unary').sum).toBe(requestBytes);
    expect(histogramOf(families, 'rpc_server_call_response_size', 'Unary').sum).toBe(responseBytes);
    expect(histogramOf(families, 'rpc_client_call_request_size', 'Unary').sum).toBe(requestBytes);
    expect(histogramOf(families, 'rpc_client_call_response_size', 'Unary').sum).toBe(responseBytes);
    const bidiRequests = [0, 1, 2]
      .map((i) => bytes(TestRequest.fromPartial({ payload: `payload-${i}` }), TestRequest))
      .reduce((a, b) => a + b);
    const bidiResponses = streamed.map((r) => bytes(r, TestResponse)).reduce((a, b) => a + b);
    expect(histogramOf(families, 'rpc_server_call_request_size', 'Bidi').sum).toBe(bidiRequests);
    expect(histogramOf(families, 'rpc_client_call_response_size', 'Bidi').sum).toBe(bidiResponses);
  });

  it('refuses messageSizes without services, naming the option', () => {
    expect(() => metricsServerMiddleware({ messageSizes: true })).toThrow(
      /`messageSizes: true` needs `services`/,
    );
  });

  it('refuses duration buckets that are not increasing finite numbers, and bad maxMethods', () => {
    for (const durationBuckets of [[], [0.1, 0.1], [1, 0.5], [0.1, Number.NaN]]) {
      expect(() => metricsClientMiddleware({ durationBuckets })).toThrow(
        /`durationBuckets` must be finite numbers in increasing order/,
      );
    }
    expect(() => metricsServerMiddleware({ maxMethods: -5 })).toThrow(/^maxMethods must be/);
  });
});

describe('a status outside the spec', () => {
  it('is counted as UNKNOWN on both sides, so a peer cannot mint series', async () => {
    const { client } = await measured.start({
      implementation: (backend) => ({
        ...createTestServiceImpl({ backend }),
        async unary(request) {
          throw new ServerError(Number(request.payload) as Status, 'odd');
        },
      }),
    });
    for (const code of ['99', '1000', '-3']) {
      await expect(client.unary({ payload: code })).rejects.toBeInstanceOf(ClientError);
    }
    const families = await settledScrape();
    for (const side of ['server', 'client']) {
      const codes = (families.get(`rpc_${side}_call_duration`)?.histograms ?? []).map((h) => [
        h.labels.rpc_response_status_code,
        h.count,
      ]);
      expect(codes).toEqual([['UNKNOWN', 3]]);
    }
  });
});
