import { describe, expect, test } from 'vitest';
import { createRetryBudget } from '../src/index.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** A budget over a one-second window on the test's clock, with no reserve unless given one. */
function oneSecondBudget(
  now: () => number,
  options: { retryRatio: number; minRetriesPerSecond?: number },
) {
  return createRetryBudget({ minRetriesPerSecond: 0, ttlMs: 1000, now, ...options });
}

function withdrawals(budget: { withdraw(): boolean }, max = 10_000): number {
  let n = 0;
  while (n < max && budget.withdraw()) n++;
  return n;
}

describe('createRetryBudget', () => {
  test('allows exactly ratio × calls + minPerSecond × window retries within one window', () => {
    const { now } = clock();
    const budget = createRetryBudget({ now });
    for (let i = 0; i < 2000; i++) budget.deposit();
    expect(withdrawals(budget)).toBe(2000 * 0.2 + 10 * 10);
  });

  test('a quiet client still gets the reserve', () => {
    const budget = oneSecondBudget(clock().now, { retryRatio: 0, minRetriesPerSecond: 5 });
    expect(withdrawals(budget)).toBe(5);
  });

  test('calls and retries stop counting once they leave the window', () => {
    const c = clock();
    const budget = oneSecondBudget(c.now, { retryRatio: 1 });
    budget.deposit();
    c.advance(1500);
    expect(budget.withdraw()).toBe(false);

    const reserve = oneSecondBudget(c.now, { retryRatio: 0, minRetriesPerSecond: 1 });
    expect(withdrawals(reserve)).toBe(1);
    c.advance(500);
    expect(reserve.withdraw()).toBe(false);
    c.advance(600);
    expect(withdrawals(reserve)).toBe(1);
  });

  test('the window slides: a deposit counts for between 0.9 and 1 ttl', () => {
    const c = clock();
    const budget = oneSecondBudget(c.now, { retryRatio: 0.5 });
    budget.deposit();
    budget.deposit();
    c.advance(850);
    expect(budget.withdraw()).toBe(true);

    c.advance(3000);
    budget.deposit();
    c.advance(400);
    budget.deposit();
    c.advance(700);
    budget.deposit();
    // The first of these three deposits has expired; the other two make one retry.
    expect(withdrawals(budget)).toBe(1);
  });

  test('a long pause clears the whole window', () => {
    const c = clock();
    const budget = oneSecondBudget(c.now, { retryRatio: 1 });
    for (let i = 0; i < 10; i++) budget.deposit();
    c.advance(60_000);
    expect(budget.withdraw()).toBe(false);
  });

  test('rejects settings outside tower’s and Finagle’s ranges with the option’s name', () => {
    expect(() => createRetryBudget({ ttlMs: 500 })).toThrow(
      /ttlMs must be between 1000 and 60000, got 500/,
    );
    expect(() => createRetryBudget({ retryRatio: -1 })).toThrow(/retryRatio/);
    expect(() => createRetryBudget({ retryRatio: Number.NaN })).toThrow(/retryRatio/);
    expect(() => createRetryBudget({ minRetriesPerSecond: -1 })).toThrow(/minRetriesPerSecond/);
    expect(() => createRetryBudget({ minRetriesPerSecond: Number.POSITIVE_INFINITY })).toThrow(
      /minRetriesPerSecond/,
    );
  });
});
