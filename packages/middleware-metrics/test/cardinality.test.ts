import { randomBytes } from 'node:crypto';
import { connect } from 'node:http2';
import type { MetricFamily } from '@switchyard/testing';
import {
  CleanupSteps,
  createTestClient,
  type RunningTestServer,
  startServer,
  TestRequest,
  TestResponse,
  TestServiceDefinition,
} from '@switchyard/testing';
import { createChannel, createClientFactory } from 'nice-grpc';
import { Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsClientMiddleware, metricsServerMiddleware } from '../src/index.js';
import { scrapedMeter } from './harness.js';

const CALLS = 10_000;
const CONCURRENCY = 64;

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

/** Runs `task(i)` for i in [0, count) with at most CONCURRENCY running. */
async function runBounded(count: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

function randomMethod(): string {
  return `/attack.${randomBytes(6).toString('hex')}.Service/M${randomBytes(6).toString('hex')}`;
}

function seriesCount(families: Map<string, MetricFamily>): number {
  let count = 0;
  for (const family of families.values()) count += family.samples.length + family.histograms.length;
  return count;
}

describe('10,000 calls to random unknown methods', () => {
  it('on the server: grpc-js answers UNIMPLEMENTED before any middleware runs, so no series appear', async () => {
    const scraped = await scrapedMeter(cleanup);
    const server: RunningTestServer = await startServer({
      middleware: [metricsServerMiddleware({ meterProvider: scraped.meterProvider })],
    });
    cleanup.defer(() => server.stop());
    const client = createTestClient(server.address);
    cleanup.defer(() => client.close());
    await client.client.unary({ payload: 'known' });
    const before = await scraped.scrape();

    // A raw HTTP/2 client can name any path; nice-grpc's clients can only call their definition's.
    const session = connect(`http://${server.address}`);
    cleanup.defer(() => session.close());
    const statuses = new Map<string, number>();
    await runBounded(CALLS, async () => {
      const stream = session.request({
        ':method': 'POST',
        ':path': randomMethod(),
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      stream.end(Buffer.alloc(5));
      const status = await new Promise<string>((resolve, reject) => {
        let code = '';
        stream.on('response', (headers) => {
          code = String(headers['grpc-status'] ?? code);
        });
        stream.on('trailers', (trailers) => {
          code = String(trailers['grpc-status'] ?? code);
        });
        stream.on('error', reject);
        stream.on('close', () => resolve(code));
        stream.resume();
      });
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    });
    expect(statuses).toEqual(new Map([[String(Status.UNIMPLEMENTED), CALLS]]));

    const after = await scraped.scrape();
    expect(seriesCount(after)).toBe(seriesCount(before));
    const started = after.get('rpc_server_call_started_total')?.samples ?? [];
    expect(started.map((sample) => [sample.labels.rpc_method, sample.value])).toEqual([
      ['switchyard.testing.v1.TestService/Unary', 1],
    ]);
  });

  it('on the client: arbitrary method names collapse to _OTHER, or stop at maxMethods without services', async () => {
    const strict = await scrapedMeter(cleanup);
    const learning = await scrapedMeter(cleanup);
    const server = await startServer();
    cleanup.defer(() => server.stop());
    // A client whose definition has 10,000 methods the server does not serve, as a generic
    // client (a proxy, a reflection-driven tool) would build at run time.
    const definition = Object.fromEntries(
      Array.from({ length: CALLS }, (_, i) => [
        `m${i}`,
        {
          path: randomMethod(),
          requestStream: false,
          responseStream: false,
          requestSerialize: (value: TestRequest) => TestRequest.encode(value).finish(),
          requestDeserialize: (bytes: Uint8Array) => TestRequest.decode(bytes),
          responseSerialize: (value: TestResponse) => TestResponse.encode(value).finish(),
          responseDeserialize: (bytes: Uint8Array) => TestResponse.decode(bytes),
          options: {},
        },
      ]),
    );
    const channel = createChannel(server.address);
    cleanup.defer(() => channel.close());
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => {
      if (warning.code === 'SWITCHYARD_METHOD_CARDINALITY') warnings.push(warning.message);
    };
    process.on('warning', onWarning);
    cleanup.defer(() => process.off('warning', onWarning));
    const client = createClientFactory()
      .use(
        metricsClientMiddleware({
          meterProvider: strict.meterProvider,
          services: [TestServiceDefinition],
        }),
      )
      .use(metricsClientMiddleware({ meterProvider: learning.meterProvider }))
      .create(definition, channel);
    const methods = Object.values(client) as ((request: TestRequest) => Promise<TestResponse>)[];
    const codes = new Map<number, number>();
    await runBounded(CALLS, async (i) => {
      const code = await (methods[i] as (request: TestRequest) => Promise<TestResponse>)(
        TestRequest.fromPartial({}),
      ).then(
        () => Status.OK,
        (error: { code: number }) => error.code,
      );
      codes.set(code, (codes.get(code) ?? 0) + 1);
    });
    expect(codes).toEqual(new Map([[Status.UNIMPLEMENTED, CALLS]]));

    // With the services it calls named, every unknown method is one `_OTHER` series.
    const named = await strict.scrape();
    const duration = named.get('rpc_client_call_duration')?.histograms ?? [];
    expect(duration.map((h) => [h.labels.rpc_method, h.count])).toEqual([['_OTHER', CALLS]]);
    expect(seriesCount(named)).toBeLessThanOrEqual(5);

    // Without them, the first 200 method names are kept and the rest collapse: bounded all the same.
    const learned = await learning.scrape();
    const learnedDuration = learned.get('rpc_client_call_duration')?.histograms ?? [];
    expect(learnedDuration).toHaveLength(201);
    const other = learnedDuration.find((h) => h.labels.rpc_method === '_OTHER');
    expect(other?.count).toBe(CALLS - 200);
    expect(warnings).toHaveLength(1);
    // 10,000 real calls: a correctness test, given room for a loaded machine.
  }, 120_000);
});
