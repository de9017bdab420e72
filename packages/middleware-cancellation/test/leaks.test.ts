import { getEventListeners } from 'node:events';
import { deadlineMiddleware, deadlineServerMiddleware } from '@switchyard/middleware-deadline';
import { currentCallScope, withInboundCall } from '@switchyard/nice-grpc';
import { createChannel, createClientFactory, createServer } from 'nice-grpc';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cancellationMiddleware } from '../src/index.js';
import { Hop, type Text } from './hop.js';

const CALLS = 10_000;
const CONCURRENCY = 100;

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

async function serve(unary: (request: Text) => Promise<Text>) {
  const server = createServer(withInboundCall()).use(deadlineServerMiddleware);
  const unused = () => Promise.reject(new Error('unused'));
  server.add(Hop, { unary, serverStream: unused, clientStream: unused, bidi: unused } as never);
  const port = await server.listen('127.0.0.1:0');
  cleanup.push(() => server.forceShutdown());
  const channel = createChannel(`127.0.0.1:${port}`);
  cleanup.push(() => channel.close());
  return createClientFactory()
    .use(deadlineMiddleware)
    .use(cancellationMiddleware)
    .create(Hop, channel);
}

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

interface Report {
  inboundListeners: [number, number];
  ownListeners: number;
  timers: [number, number];
}
let report: Report;
let a: Awaited<ReturnType<typeof serve>>;

beforeAll(async () => {
  const echo = await serve(async (request) => request);
  // B serves one long inbound call and makes every downstream call from inside it, half with a
  // long-lived signal of their own: listeners would pile up on both signals if any were left.
  a = await serve(async () => {
    const inbound = currentCallScope()!.signal;
    const own = new AbortController();
    await echo.unary({ value: 'warm-up' });
    const before = {
      listeners: getEventListeners(inbound, 'abort').length,
      timers: activeTimers(),
    };
    let next = 0;
    async function worker() {
      while (next < CALLS) {
        const options = next++ % 2 === 0 ? { signal: own.signal } : {};
        await echo.unary({ value: 'x' }, { ...options, deadline: 5_000 });
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    report = {
      inboundListeners: [before.listeners, getEventListeners(inbound, 'abort').length],
      ownListeners: getEventListeners(own.signal, 'abort').length,
      timers: [before.timers, activeTimers()],
    };
    return { value: 'done' };
  });
});

it(`leaves no listener on the inbound or the caller's signal, nor a timer, after ${CALLS} calls`, async () => {
  await a.unary({ value: 'go' }, { deadline: 60_000 });
  expect(report.inboundListeners[1]).toBe(report.inboundListeners[0]);
  expect(report.ownListeners).toBe(0);
  // Each call arms timers that would outlive it if left (deadlines of 5 s), so a leak shows as
  // thousands; grpc-js's own few come and go.
  expect(report.timers[1]).toBeLessThanOrEqual(report.timers[0]);
});
