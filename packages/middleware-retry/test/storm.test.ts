import { retryBudgetExhaustedChannel } from '@switchyard/core';
import { CleanupSteps, TestServiceDefinition } from '@switchyard/testing';
import { createClientFactory } from 'nice-grpc';
import { afterEach, expect, test } from 'vitest';
import { createRetryBudget, createRetryMiddleware } from '../src/index.js';
import { failFirst, servedAttempts, serverAndChannel } from './support.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

test('storm bound: 2,000 calls from 50 concurrent callers to a 100% failing backend make ≤ calls × (1 + ratio) + minPerSecond × window attempts', async () => {
  const calls = 2000;
  const callers = 50;
  const ratio = 0.2;
  const minPerSecond = 10;
  const windowSeconds = 10;

  const { middleware, attempts } = servedAttempts(failFirst(Number.POSITIVE_INFINITY));
  const { channel } = await serverAndChannel(cleanup, { middleware: [middleware] });
  const budget = createRetryBudget({
    retryRatio: ratio,
    minRetriesPerSecond: minPerSecond,
    ttlMs: windowSeconds * 1000,
    // The formula is the bound within one window. The run takes 1–10 s depending on the load on
    // this machine, so the budget's clock is held still: the whole run is one window, whatever
    // its length. Expiry across windows is tested in retry-budget.test.ts.
    now: () => 0,
  });
  const client = createClientFactory()
    .use(createRetryMiddleware({ budget }))
    .create(TestServiceDefinition, channel);
  let refusals = 0;
  const countRefusal = () => refusals++;
  retryBudgetExhaustedChannel.subscribe(countRefusal);
  cleanup.defer(() => retryBudgetExhaustedChannel.unsubscribe(countRefusal));

  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < calls) {
        next++;
        // Without a budget each call would make 11 attempts: 22,000 in all.
        await client
          .unary({}, { retry: true, retryMaxAttempts: 10, retryBaseDelayMs: 1, retryMaxDelayMs: 4 })
          .catch(() => failed++);
      }
    }),
  );

  expect(failed).toBe(calls);
  const bound = calls * (1 + ratio) + minPerSecond * windowSeconds;
  expect(attempts.length).toBeLessThanOrEqual(bound);
  // The budget, not luck, held it: retries ran until the budget refused them.
  expect(attempts.length).toBeGreaterThan(calls * (1 + ratio));
  expect(refusals).toBeGreaterThan(0);
  expect(attempts.length + refusals).toBeGreaterThan(bound);
});
