import { serviceMethods } from '@switchyard/core';
import { createChannel, createClient, createServer, ServerError } from 'nice-grpc';
import { type CallContext, Metadata, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import { servedStatus, withInboundCall } from '../src/index.js';
import { JsonService, type Observation, type Probe } from './json-service.js';

describe('serviceMethods', () => {
  // core's telemetry conventions read nice-grpc and grpc-js definitions as they are.
  it('reads nice-grpc and grpc-js definitions', () => {
    const methods = serviceMethods(JsonService);
    expect(methods.map((m) => m.path)).toEqual([
      '/test.Json/Unary',
      '/test.Json/ServerStream',
      '/test.Json/Bidi',
    ]);
    expect(methods[0]?.requestSize({ id: 7 })).toBe('{"id":7}'.length);
  });
});

describe('servedStatus', () => {
  const servers: { forceShutdown(): void }[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) server.forceShutdown();
  });

  it('classifies handler outcomes as nice-grpc reports them', () => {
    const context = { signal: new AbortController().signal, metadata: undefined } as never;
    expect(servedStatus(context, false)).toBe(Status.OK);
    expect(servedStatus(context, true, new ServerError(Status.NOT_FOUND, 'x'))).toBe(
      Status.NOT_FOUND,
    );
    const abort = new Error('aborted');
    abort.name = 'AbortError';
    expect(servedStatus(context, true, abort)).toBe(Status.CANCELLED);
    expect(servedStatus(context, true, new Error('boom'))).toBe(Status.UNKNOWN);
    expect(servedStatus(context, true, new ServerError(99 as Status, 'odd'))).toBe(Status.UNKNOWN);
  });

  it('reports DEADLINE_EXCEEDED for a call aborted by its deadline, even if the handler returns', async () => {
    const seen: Status[] = [];
    const server = createServer(withInboundCall()).use(async function* (call, context) {
      let failed = false;
      let error: unknown;
      try {
        return yield* call.next(call.request, context);
      } catch (e) {
        failed = true;
        error = e;
        throw e;
      } finally {
        seen.push(servedStatus(context as CallContext, failed, error));
      }
    });
    server.add(JsonService, {
      async unary(probe: Probe, { signal }: CallContext): Promise<Observation> {
        // Ignores the abort: the response is discarded, the client already saw the deadline.
        await new Promise((resolve) => setTimeout(resolve, (probe.delayMs ?? 0) + 100));
        expect(signal.aborted).toBe(true);
        return { id: probe.id, seen: [] };
      },
      async *serverStream() {},
      async *bidi() {},
    });
    servers.push(server);
    const port = await server.listen('127.0.0.1:0');
    const channel = createChannel(`127.0.0.1:${port}`);
    const client = createClient(JsonService, channel);
    await expect(
      // nice-grpc's client has no deadline option; grpc-js on the server enforces the header.
      client.unary({ id: 1, delayMs: 50 }, { metadata: Metadata({ 'grpc-timeout': '50m' }) }),
    ).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    await expect.poll(() => seen).toEqual([Status.DEADLINE_EXCEEDED]);
    channel.close();
  });
});
