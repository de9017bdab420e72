import { constants, type IncomingHttpHeaders } from 'node:http2';
import { parseGrpcTimeout } from '@switchyard/core';
import { CleanupSteps, TestServiceDefinition } from '@switchyard/testing';
import { ClientError, createClient, createClientFactory, Metadata, Status } from 'nice-grpc';
import { afterEach, describe, expect, it } from 'vitest';
import { type DeadlineClientOptions, deadlineClientMiddleware } from '../src/index.js';
import { channelTo, deadlineClient, observedDeadline, startDeadlineServer } from './servers.js';
import { startWireServer } from './wire.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

function clientFor(address: string, options?: DeadlineClientOptions) {
  return deadlineClient(cleanup, address, options && deadlineClientMiddleware(options));
}

async function wireServer(answer: boolean) {
  const server = await startWireServer({ answer });
  cleanup.defer(server.stop);
  return server;
}

/** The budget, in ms, that the server received in `grpc-timeout`; undefined without one. */
function sentTimeout(headers: IncomingHttpHeaders) {
  const value = headers['grpc-timeout'];
  return value === undefined ? undefined : parseGrpcTimeout(String(value));
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('the call succeeded'),
    (error: unknown) => error,
  );
}

describe('deadline on the wire', () => {
  it('sends the deadline as grpc-timeout, given as a Date or as milliseconds', async () => {
    const server = await wireServer(true);
    const client = clientFor(server.address);
    await client.unary({}, { deadline: 1_500 });
    await client.unary({}, { deadline: new Date(Date.now() + 2_500) });
    await client.unary({});
    const [relative, absolute, none] = server.received.map((stream) => sentTimeout(stream.headers));
    expect(relative).toBeGreaterThan(1_400);
    expect(relative).toBeLessThanOrEqual(1_500);
    expect(absolute).toBeGreaterThan(2_400);
    expect(absolute).toBeLessThanOrEqual(2_500);
    expect(none).toBeUndefined();
  });

  it('fails locally with DEADLINE_EXCEEDED when the server never answers, and resets the stream', async () => {
    const server = await wireServer(false);
    const client = clientFor(server.address);
    const start = Date.now();
    const error = await failure(client.unary({}, { deadline: 200 }));
    const elapsed = Date.now() - start;
    expect(error).toEqual(
      new ClientError(
        '/switchyard.testing.v1.TestService/Unary',
        Status.DEADLINE_EXCEEDED,
        'Deadline exceeded',
      ),
    );
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(400);
    expect(await server.received[0]?.closed).toBe(constants.NGHTTP2_CANCEL);
  });

  it('fails a call whose deadline has passed without reaching the server', async () => {
    const server = await wireServer(true);
    const client = clientFor(server.address);
    for (const deadline of [0, -5, new Date(Date.now() - 1)]) {
      const error = await failure(client.unary({}, { deadline }));
      expect(error).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    }
    await client.unary({}, { deadline: 1_000 });
    expect(server.received).toHaveLength(1);
  });

  it("still lets the caller's own signal cancel the call", async () => {
    const server = await wireServer(false);
    const client = clientFor(server.address);
    const controller = new AbortController();
    const call = client.unary({}, { deadline: 5_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const error = await failure(call);
    expect(error).toMatchObject({ name: 'AbortError' });
    expect(await server.received[0]?.closed).toBe(constants.NGHTTP2_CANCEL);
  });

  it('rejects a deadline that is not a time', async () => {
    const server = await wireServer(true);
    const client = clientFor(server.address);
    await expect(client.unary({}, { deadline: Number.NaN })).rejects.toThrow(
      new RangeError('invalid deadline: NaN'),
    );
    await expect(client.unary({}, { deadline: new Date('soon') })).rejects.toThrow(RangeError);
    expect(server.received).toHaveLength(0);
  });
});

describe('defaults and cap', () => {
  const Other = {
    name: 'Other',
    fullName: 'switchyard.other.v1.Other',
    methods: { unary: TestServiceDefinition.methods.unary },
  } as const;

  it('applies the most specific default deadline to calls that set none', async () => {
    const server = await wireServer(true);
    const options = {
      defaultDeadlines: {
        '*': 30_000,
        '/switchyard.testing.v1.TestService/*': 20_000,
        '/switchyard.testing.v1.TestService/Unary': 10_000,
      },
    };
    const client = clientFor(server.address, options);
    const other = createClientFactory()
      .use(deadlineClientMiddleware(options))
      .create(Other, channelTo(cleanup, server.address));
    await client.unary({});
    for await (const _ of client.serverStream({})) {
    }
    await other.unary({});
    await client.unary({}, { deadline: 40_000 });
    const sent = server.received.map((stream) => sentTimeout(stream.headers) ?? 0);
    const expected = [10_000, 20_000, 30_000, 40_000];
    sent.forEach((ms, i) => {
      expect(ms).toBeLessThanOrEqual(expected[i]!);
      expect(ms).toBeGreaterThan(expected[i]! - 200);
    });
  });

  it('caps every call at maxDeadline, including calls with no deadline', async () => {
    const server = await wireServer(true);
    const client = clientFor(server.address, { maxDeadline: 1_000 });
    await client.unary({}, { deadline: 60_000 });
    await client.unary({});
    await client.unary({}, { deadline: 500 });
    const [long, none, short] = server.received.map((stream) => sentTimeout(stream.headers) ?? 0);
    for (const ms of [long, none]) {
      expect(ms).toBeLessThanOrEqual(1_000);
      expect(ms).toBeGreaterThan(900);
    }
    expect(short).toBeLessThanOrEqual(500);
    expect(short).toBeGreaterThan(400);
  });

  it('rejects option values that are not milliseconds, naming the option', () => {
    expect(() => deadlineClientMiddleware({ maxDeadline: -1 })).toThrow(
      /option maxDeadline must be a number of milliseconds ≥ 0, got -1/,
    );
    expect(() => deadlineClientMiddleware({ propagationOffset: Number.NaN })).toThrow(
      /option propagationOffset must be/,
    );
    expect(() => deadlineClientMiddleware({ defaultDeadlines: { '/a.B/C': -3 } })).toThrow(
      /option defaultDeadlines\['\/a.B\/C'\] must be/,
    );
  });
});

describe('very long deadlines', () => {
  const THIRTY_DAYS = 30 * 24 * 3_600_000;

  it('grpc-js servers misread a grpc-timeout of 2^31 ms or more as already past', async () => {
    // Why the client caps what it sends: grpc-js computes (value * unit) | 0.
    const server = await startDeadlineServer();
    cleanup.defer(server.stop);
    const plain = createClient(TestServiceDefinition, channelTo(cleanup, server.address));
    const start = Date.now();
    const error = await failure(
      plain.unary({ delayMs: 1_000 }, { metadata: Metadata({ 'grpc-timeout': '720H' }) }),
    );
    expect(error).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(Date.now() - start).toBeLessThan(500);
  });

  it('sends at most 2147483S, so grpc-js servers see ~24.8 days instead of an expired call', async () => {
    const server = await startDeadlineServer({
      unary: async (_, context) => ({ metadata: observedDeadline(context) }),
    });
    cleanup.defer(server.stop);
    const wire = await wireServer(true);
    const response = await clientFor(server.address).unary({}, { deadline: THIRTY_DAYS });
    expect(Number(response.metadata.timeoutMs)).toBeLessThanOrEqual(2_147_483_000);
    expect(Number(response.metadata.timeoutMs)).toBeGreaterThan(2_147_483_000 - 1_000);
    await clientFor(wire.address).unary({}, { deadline: new Date(Date.now() + THIRTY_DAYS) });
    expect(wire.received[0]?.headers['grpc-timeout']).toBe('2147483S');
  });
});
