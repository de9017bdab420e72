import { createChannel, createClient, createServer, Metadata, type Server } from 'nice-grpc';
import { afterEach, describe, expect, it } from 'vitest';
import { currentInboundCall, type InboundCall, withInboundCall } from '../src/index.js';
import { JsonService, type Observation, type Probe } from './json-service.js';

let server: Server | undefined;
afterEach(async () => {
  await server?.shutdown();
  server = undefined;
});

async function serve(options: object, observe: (call: InboundCall | undefined) => void) {
  server = createServer(options);
  server.add(JsonService, {
    async unary(request: Probe): Promise<Observation> {
      await new Promise((resolve) => setTimeout(resolve, 1));
      observe(currentInboundCall());
      return { id: request.id, seen: [] };
    },
    async *serverStream(request: Probe): AsyncIterable<Observation> {
      yield { id: request.id, seen: [] };
      observe(currentInboundCall());
    },
    async *bidi(requests: AsyncIterable<Probe>): AsyncIterable<Observation> {
      for await (const request of requests) {
        observe(currentInboundCall());
        yield { id: request.id, seen: [] };
      }
    },
  });
  const port = await server.listen('127.0.0.1:0');
  return createClient(JsonService, createChannel(`127.0.0.1:${port}`));
}

describe('inboundCallInterceptor', () => {
  it('exposes the deadline grpc-js parsed and the connection, for every call kind', async () => {
    const seen: (InboundCall | undefined)[] = [];
    const client = await serve(withInboundCall(), (call) => seen.push(call));
    const before = Date.now();
    // nice-grpc's client has no deadline option of its own; the header goes through as metadata.
    await client.unary({ id: 1 }, { metadata: Metadata({ 'grpc-timeout': '5S' }) });
    await client.unary({ id: 2 });
    for await (const _ of client.serverStream({ id: 3 })) {
    }
    async function* one() {
      yield { id: 4 };
    }
    for await (const _ of client.bidi(one())) {
    }
    expect(seen).toHaveLength(4);
    const [withDeadline, without, stream, bidi] = seen;
    expect(withDeadline?.deadline?.getTime()).toBeGreaterThan(before + 4_000);
    expect(withDeadline?.deadline?.getTime()).toBeLessThanOrEqual(Date.now() + 5_000);
    expect(without?.deadline).toBeUndefined();
    expect(stream?.connection.remoteAddress).toBe('127.0.0.1');
    expect(bidi?.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(without?.authContext).toEqual({});
  });

  it('is absent without the interceptor, and withInboundCall does not add it twice', async () => {
    const seen: (InboundCall | undefined)[] = [];
    const client = await serve({}, (call) => seen.push(call));
    await client.unary({ id: 1 });
    expect(seen).toEqual([undefined]);
    const once = withInboundCall();
    expect(withInboundCall(once).interceptors).toHaveLength(1);
  });
});
