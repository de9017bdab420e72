import { once } from 'node:events';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type CallContext,
  createChannel,
  createClient,
  createClientFactory,
  createServer,
  Metadata,
  type Server,
} from 'nice-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  callScopeServerMiddleware,
  currentCallScope,
  forwardScopeMetadata,
  serverMiddleware,
  withInboundCall,
} from '../src/index.js';
import { JsonService, type Observation, type Probe } from './json-service.js';

// What a handler reports about the scope it runs in: the `traceparent` the scope forwards.
function scopeTrace(): string | undefined {
  return currentCallScope()?.forwardMetadata.get('traceparent');
}

const servers: Server[] = [];
type Frontend = ReturnType<typeof createClient<typeof JsonService>>;
// The middle hop twice: entering the scope itself, and inside the state the inbound-call
// interceptor entered for the call (the path a Switchyard server takes).
const frontends: Record<'plain' | 'intercepted', Frontend> = {} as never;

beforeAll(async () => {
  // Leaf: reports the traceparent it received, i.e. what the middle hop forwarded.
  const leaf = createServer();
  leaf.add(JsonService, {
    async unary(request: Probe, context: CallContext): Promise<Observation> {
      return { id: request.id, seen: [context.metadata.get('traceparent')] };
    },
    async *serverStream() {},
    async *bidi() {},
  });
  const leafPort = await leaf.listen('127.0.0.1:0');
  const leafClient = createClientFactory()
    .use(forwardScopeMetadata)
    .create(JsonService, createChannel(`127.0.0.1:${leafPort}`));

  // Middle hop: checks its scope after awaits, timers, stream events and a nested call.
  const implementation = {
    async unary(request: Probe): Promise<Observation> {
      const seen = [scopeTrace()];
      await sleep(request.delayMs ?? 0);
      seen.push(scopeTrace());
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          seen.push(scopeTrace());
          resolve();
        }, request.id % 3),
      );
      const stream = Readable.from([1, 2]);
      stream.on('data', () => seen.push(scopeTrace()));
      await once(stream, 'end');
      const downstream = await leafClient.unary({ id: request.id });
      seen.push(scopeTrace());
      return { id: request.id, seen, downstream: [downstream] };
    },
    async *serverStream(request: Probe): AsyncIterable<Observation> {
      for (let i = 0; i < 3; i++) {
        await sleep((request.id + i) % 4);
        const downstream = await leafClient.unary({ id: request.id });
        yield { id: request.id, seen: [scopeTrace()], downstream: [downstream] };
      }
    },
    async *bidi(requests: AsyncIterable<Probe>): AsyncIterable<Observation> {
      for await (const request of requests) {
        await sleep(request.id % 3);
        yield { id: request.id, seen: [scopeTrace()] };
      }
    },
  };
  servers.push(leaf);
  for (const kind of ['plain', 'intercepted'] as const) {
    const middle = createServer(kind === 'intercepted' ? withInboundCall() : {}).use(
      callScopeServerMiddleware(),
    );
    middle.add(JsonService, implementation);
    const middlePort = await middle.listen('127.0.0.1:0');
    frontends[kind] = createClient(JsonService, createChannel(`127.0.0.1:${middlePort}`));
    servers.push(middle);
  }
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.shutdown()));
});

const trace = (i: number) => `00-${i.toString(16).padStart(32, '0')}-00000000000000a1-01`;
const withTrace = (i: number) => ({ metadata: Metadata({ traceparent: trace(i) }) });

describe('call scope across real gRPC calls', () => {
  it.each(['plain', 'intercepted'] as const)(
    '1,000 concurrent interleaved calls each see their own scope, across timers, streams and nested calls (%s server)',
    async (kind) => {
      const frontend = frontends[kind];
      const calls = Array.from({ length: 1_000 }, async (_, i) => {
        switch (i % 3) {
          case 0: {
            const response = await frontend.unary({ id: i, delayMs: i % 5 }, withTrace(i));
            expect(response.seen).toEqual(Array(6).fill(trace(i)));
            expect(response.downstream?.[0]?.seen).toEqual([trace(i)]);
            return;
          }
          case 1: {
            const responses: Observation[] = [];
            for await (const response of frontend.serverStream({ id: i }, withTrace(i))) {
              responses.push(response);
            }
            expect(responses.map((r) => r.seen[0])).toEqual(Array(3).fill(trace(i)));
            expect(responses.map((r) => r.downstream?.[0]?.seen[0])).toEqual(
              Array(3).fill(trace(i)),
            );
            return;
          }
          default: {
            async function* requests() {
              for (let k = 0; k < 3; k++) {
                await sleep(k);
                yield { id: i };
              }
            }
            const seen: unknown[] = [];
            for await (const response of frontend.bidi(requests(), withTrace(i)))
              seen.push(...response.seen);
            expect(seen).toEqual(Array(3).fill(trace(i)));
          }
        }
      });
      await Promise.all(calls);
    },
  );

  it('a call made outside any handler forwards nothing', async () => {
    const response = await frontends.plain.unary({ id: 7 });
    // JSON turns the handlers' `undefined` into null.
    expect(response.seen).toEqual(Array(6).fill(null));
    expect(response.downstream?.[0]?.seen).toEqual([null]);
  });

  it('callScopeServerMiddleware keeps what an earlier middleware put in the scope, and adds its own headers', async () => {
    const server = createServer()
      .use(
        serverMiddleware((call, next) => {
          call.transport.forwardHeaders.set('traceparent', 'from-span');
          return next(call);
        }),
      )
      .use(callScopeServerMiddleware({ forwardHeaders: ['traceparent', 'x-request-id'] }));
    server.add(JsonService, {
      async unary(request: Probe): Promise<Observation> {
        const forwarded = currentCallScope()?.forwardMetadata;
        return {
          id: request.id,
          seen: [forwarded?.get('traceparent'), forwarded?.get('x-request-id')],
        };
      },
      async *serverStream() {},
      async *bidi() {},
    });
    const port = await server.listen('127.0.0.1:0');
    try {
      const client = createClient(JsonService, createChannel(`127.0.0.1:${port}`));
      const response = await client.unary(
        { id: 1 },
        { metadata: Metadata({ traceparent: 'from-request', 'x-request-id': 'r-1' }) },
      );
      expect(response.seen).toEqual(['from-span', 'r-1']);
    } finally {
      await server.shutdown();
    }
  });
});
