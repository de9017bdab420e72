import {
  createTestServiceImpl,
  type TestServiceClient,
  TestServiceDefinition,
} from '@switchyard/testing';
import { createClient } from 'nice-grpc';
import { ClientError, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import {
  HealthState,
  type ServingStateOptions,
  HealthCheckResponse_ServingStatus as ServingStatus,
  servingStateMiddleware,
} from '../src/index.js';
import { type RunningHealthServer, startHealthServer } from './support/health-server.js';

const TEST_SERVICE = TestServiceDefinition.fullName;

let running: RunningHealthServer | undefined;
afterEach(() => {
  running?.close();
  running = undefined;
});

async function start(options: ServingStateOptions = {}) {
  const health = HealthState();
  running = await startHealthServer({
    health,
    middleware: servingStateMiddleware(health, options),
    add: (server) => server.add(TestServiceDefinition, createTestServiceImpl({ backend: 'b' })),
  });
  const test: TestServiceClient = createClient(TestServiceDefinition, running.channel);
  return { ...running, test };
}

async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'OK';
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    return `${Status[error.code]}: ${error.details}`;
  }
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}

describe('servingStateMiddleware', () => {
  it('refuses new calls to a NOT_SERVING service with UNAVAILABLE while health stays reachable', async () => {
    const { health, test, client } = await start();
    health.setStatus('unhealthy', TEST_SERVICE);

    expect(await outcome(test.unary({ payload: 'x' }))).toBe(
      `UNAVAILABLE: ${TEST_SERVICE} is NOT_SERVING`,
    );
    expect(await outcome(collect(test.serverStream({ responseCount: 3 })))).toBe(
      `UNAVAILABLE: ${TEST_SERVICE} is NOT_SERVING`,
    );
    expect(await client.check({ service: TEST_SERVICE })).toEqual({
      status: ServingStatus.NOT_SERVING,
    });

    health.setStatus('healthy', TEST_SERVICE);
    expect(await outcome(test.unary({ payload: 'x' }))).toBe('OK');
  });

  it('refuses every service but health while the whole server is NOT_SERVING', async () => {
    const { health, test, client } = await start();
    health.setStatus('healthy', TEST_SERVICE);
    health.setStatus('unhealthy');

    expect(await outcome(test.unary({}))).toBe('UNAVAILABLE: server is NOT_SERVING');
    expect(await client.check({ service: '' })).toEqual({ status: ServingStatus.NOT_SERVING });
    expect(await client.list({})).toBeDefined();
  });

  it('lets calls already running finish', async () => {
    const { health, test } = await start();
    const stream = test.serverStream({ responseCount: 3, delayMs: 100 })[Symbol.asyncIterator]();
    // The first response proves the call is running before the service turns NOT_SERVING.
    expect((await stream.next()).value.sequence).toBe(0);
    health.setStatus('unhealthy', TEST_SERVICE);

    expect(await outcome(collect({ [Symbol.asyncIterator]: () => stream }))).toBe('OK');
    expect(await outcome(test.unary({}))).toBe(`UNAVAILABLE: ${TEST_SERVICE} is NOT_SERVING`);
  });

  it('keeps serving while draining and refuses everything once stopped', async () => {
    const { health, test, client } = await start();
    health.drain();
    expect(await client.check({ service: '' })).toEqual({ status: ServingStatus.NOT_SERVING });
    expect(await outcome(test.unary({}))).toBe('OK');

    health.stop();
    expect(await outcome(test.unary({}))).toBe('UNAVAILABLE: server is shutting down');
    expect(await client.check({ service: '' })).toEqual({ status: ServingStatus.NOT_SERVING });
  });

  it('uses the configured status code and exempt services', async () => {
    const { health, test, client } = await start({
      code: Status.FAILED_PRECONDITION,
      exemptServices: [TEST_SERVICE],
    });
    health.setStatus('unhealthy');

    expect(await outcome(test.unary({}))).toBe('OK');
    expect(await outcome(client.check({ service: '' }))).toBe(
      'FAILED_PRECONDITION: server is NOT_SERVING',
    );
  });
});
