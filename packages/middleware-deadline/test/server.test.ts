import { setTimeout as sleep } from 'node:timers/promises';
import { CleanupSteps, createTestServiceImpl, TestServiceDefinition } from '@switchyard/testing';
import {
  ClientError,
  createClient,
  createClientFactory,
  createServer,
  Metadata,
  Status,
} from 'nice-grpc';
import type { CallContext } from 'nice-grpc-common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deadlineMiddleware, deadlineServerMiddleware } from '../src/index.js';
import {
  channelTo,
  type DeadlineImplementation,
  deadlineClient,
  observedDeadline,
  startDeadlineServer,
} from './servers.js';
import { startWireServer } from './wire.js';

const cleanup = new CleanupSteps();
afterEach(async () => {
  await cleanup.run();
  vi.restoreAllMocks();
});

async function serve(implementation: DeadlineImplementation) {
  const server = await startDeadlineServer(implementation);
  cleanup.defer(server.stop);
  const channel = channelTo(cleanup, server.address);
  return {
    client: createClientFactory().use(deadlineMiddleware).create(TestServiceDefinition, channel),
    // No deadline middleware: the grpc-timeout header is all the server gets, and the client
    // has no timer of its own, so what it sees is the server's doing.
    plain: createClient(TestServiceDefinition, channel),
  };
}

async function* one<T>(value: T) {
  yield value;
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

describe('the handler sees its deadline', () => {
  const reporting: DeadlineImplementation = {
    unary: async (_, context) => ({ metadata: observedDeadline(context) }),
    async *serverStream(_, context) {
      yield { metadata: observedDeadline(context) };
    },
    async clientStream(requests, context) {
      for await (const _ of requests) {
      }
      return { metadata: observedDeadline(context) };
    },
    async *bidi(requests, context) {
      for await (const _ of requests) yield { metadata: observedDeadline(context) };
    },
  };

  it('as context.deadline and context.timeoutMs(), in every call kind', async () => {
    const { client } = await serve(reporting);
    const options = { deadline: 2_000 };
    const before = Date.now();
    const seen = [
      await client.unary({}, options),
      ...(await collect(client.serverStream({}, options))),
      await client.clientStream(one({}), options),
      ...(await collect(client.bidi(one({}), options))),
    ].map((response) => response.metadata);
    expect(seen).toHaveLength(4);
    for (const { deadline, timeoutMs } of seen) {
      expect(Number(deadline)).toBeGreaterThan(before + 1_900);
      expect(Number(deadline)).toBeLessThanOrEqual(Date.now() + 2_000);
      expect(Number(timeoutMs)).toBeGreaterThan(1_800);
      expect(Number(timeoutMs)).toBeLessThanOrEqual(2_000);
    }
  });

  it('as undefined when the client sent no grpc-timeout', async () => {
    const { client } = await serve(reporting);
    const response = await client.unary({});
    expect(response.metadata).toEqual({ deadline: 'undefined', timeoutMs: 'undefined' });
  });
});

describe('a handler that ignores its deadline', () => {
  function ignoring() {
    const aborted: number[] = [];
    const implementation: DeadlineImplementation = {
      async unary(_, context: CallContext) {
        context.signal.addEventListener('abort', () => aborted.push(Date.now()));
        await sleep(600);
        return {};
      },
      async *serverStream(_, context: CallContext) {
        context.signal.addEventListener('abort', () => aborted.push(Date.now()));
        yield { sequence: 0 };
        await sleep(600);
        yield { sequence: 1 };
      },
    };
    return { aborted, implementation };
  }

  it('still ends the call with DEADLINE_EXCEEDED on time, and its signal aborts then', async () => {
    const { aborted, implementation } = ignoring();
    const { plain } = await serve(implementation);
    const metadata = Metadata({ 'grpc-timeout': '150m' });
    const start = Date.now();
    const error = await plain.unary({}, { metadata }).catch((e: unknown) => e);
    const elapsed = Date.now() - start;
    expect(error).toMatchObject({ code: Status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' });
    expect(elapsed).toBeGreaterThanOrEqual(145);
    expect(elapsed).toBeLessThan(350);
    expect(aborted).toHaveLength(1);
    expect(aborted[0]! - start).toBeGreaterThanOrEqual(145);
    expect(aborted[0]! - start).toBeLessThan(350);
  });

  it('ends a response stream with DEADLINE_EXCEEDED on time', async () => {
    const { aborted, implementation } = ignoring();
    const { plain } = await serve(implementation);
    const metadata = Metadata({ 'grpc-timeout': '150m' });
    const received: number[] = [];
    const start = Date.now();
    const error = await (async () => {
      for await (const response of plain.serverStream({}, { metadata }))
        received.push(response.sequence);
    })().catch((e: unknown) => e);
    expect(Date.now() - start).toBeLessThan(350);
    expect(error).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(received).toEqual([0]);
    expect(aborted).toHaveLength(1);
  });
});

describe('misconfiguration and errors', () => {
  it('fails every call with a clear INTERNAL error, and warns once, without the interceptor', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const server = createServer().use(deadlineServerMiddleware);
    server.add(TestServiceDefinition, createTestServiceImpl({ backend: 'unconfigured' }));
    const port = await server.listen('127.0.0.1:0');
    cleanup.defer(() => server.forceShutdown());
    const client = createClient(TestServiceDefinition, channelTo(cleanup, `127.0.0.1:${port}`));
    for (let i = 0; i < 2; i++) {
      await expect(client.unary({})).rejects.toMatchObject({
        code: Status.INTERNAL,
        details: expect.stringContaining('createServer(withInboundCall(options))'),
      });
    }
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/inbound-call interceptor/);
  });

  it('answers DEADLINE_EXCEEDED, not UNKNOWN, when a call the handler made ran out of time', async () => {
    const hung = await startWireServer({ answer: false });
    cleanup.defer(hung.stop);
    const downstream = deadlineClient(cleanup, hung.address);
    const { client } = await serve({
      unary: () => downstream.unary({}, { deadline: 50 }),
    });
    const error = await client.unary({}).catch((e: unknown) => e);
    expect(error).toEqual(
      new ClientError(
        '/switchyard.testing.v1.TestService/Unary',
        Status.DEADLINE_EXCEEDED,
        'Deadline exceeded',
      ),
    );
  });
});
