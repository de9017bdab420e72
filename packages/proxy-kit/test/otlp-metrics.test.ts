import {
  CleanupSteps,
  createTestClient,
  startOtlpReceiver,
  startServer,
} from '@switchyard/testing';
import { afterEach, expect, it } from 'vitest';
import { runCalls, startProxyProcess } from './support/proxy-process.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

it('pushes its per-method and per-endpoint duration histograms over OTLP when OTEL_* ask for it', async () => {
  const receiver = await startOtlpReceiver();
  cleanup.defer(() => receiver.close());
  const backend = await startServer();
  cleanup.defer(() => backend.stop());
  const proxy = await startProxyProcess(['--upstream', backend.address], {
    ...process.env,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_TRACES_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
  });
  const { client, close } = createTestClient(proxy.address);
  await runCalls(20, 4, () => client.unary({}));
  close();
  // The last export happens on the way out (the interval's default is a minute).
  expect((await proxy.stop()).code).toBe(0);

  // The histograms are kept beside the SDK (issue 20) and still reach its OTLP reader.
  const [port] = backend.address.split(':').slice(-1);
  const counts = receiver.histograms.map((histogram) => ({
    name: histogram.name,
    temporality: histogram.temporality,
    points: histogram.points.map((point) => [point.attributes['server.port'], point.count]),
  }));
  expect(counts).toEqual(
    expect.arrayContaining([
      { name: 'rpc.server.call.duration', temporality: 'CUMULATIVE', points: [[undefined, 20]] },
      { name: 'rpc.client.call.duration', temporality: 'CUMULATIVE', points: [[Number(port), 20]] },
    ]),
  );
});
