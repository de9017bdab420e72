import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestServiceDefinition } from '@switchyard/testing';
import { createClientFactory, Status } from 'nice-grpc';
import { expect, it } from 'vitest';
import { deadlineMiddleware } from '../src/index.js';
import { deadlineServerPerFile } from './servers.js';

const CALLS = 10_000;
const CONCURRENCY = 100;
// Every late call is reset by the client (RST_STREAM CANCEL). Node's HTTP/2 server allows a
// burst of 1000 incoming resets per connection, then 33/s, and beyond that closes the connection
// with INTERNAL_ERROR (nghttp2's rapid-reset defence), failing every call on it; so stay below.
const LATE_EVERY = 20;

const channel = deadlineServerPerFile({
  // Ignores its signal: sleeps on a timer of its own, whatever happens to the call.
  unary: async (request) => {
    await sleep(request.delayMs);
    return {};
  },
});

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

it(`leaves no timer or listener behind after ${CALLS} calls, some past their deadline`, async () => {
  const client = createClientFactory()
    .use(deadlineMiddleware)
    .create(TestServiceDefinition, channel());
  // One long-lived signal shared by every call, as a caller's shutdown signal would be.
  const caller = new AbortController();
  await client.unary({}, { deadline: 1_000, signal: caller.signal });
  const timersBefore = activeTimers();

  const outcomes = new Map<string, number>();
  let next = 0;
  async function worker() {
    while (next < CALLS) {
      const late = next++ % LATE_EVERY === 0;
      const request = late ? { delayMs: 40 } : {};
      const outcome = await client
        .unary(request, { deadline: late ? 10 : 5_000, signal: caller.signal })
        .then(
          () => 'OK',
          (error: { code?: Status }) =>
            error.code === undefined ? String(error) : Status[error.code],
        );
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  expect(Object.fromEntries(outcomes)).toEqual({
    OK: CALLS - CALLS / LATE_EVERY,
    DEADLINE_EXCEEDED: CALLS / LATE_EVERY,
  });

  // The handlers that ignored their deadline are still sleeping; let them finish.
  await sleep(100);
  expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  // A leak would show as hundreds of timers; grpc-js's own few come and go.
  expect(activeTimers()).toBeLessThanOrEqual(timersBefore);
});
