import { describe, expect, it } from 'vitest';
import { exponentialBackoff } from '../src/index.js';

describe('exponentialBackoff', () => {
  it('grows by the multiplier up to the cap', () => {
    const backoff = exponentialBackoff({ baseMs: 100, maxMs: 1_000, random: () => 0.5, jitter: 0 });
    expect([0, 1, 2, 3, 4, 10].map(backoff)).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('full jitter spans [0, delay]', () => {
    expect(exponentialBackoff({ baseMs: 100, random: () => 0 })(2)).toBe(0);
    expect(exponentialBackoff({ baseMs: 100, random: () => 0.999 })(2)).toBeCloseTo(399.6);
  });

  it('proportional jitter spans [delay·(1−j), delay·(1+j)]', () => {
    expect(exponentialBackoff({ baseMs: 1_000, jitter: 0.2, random: () => 0 })(0)).toBeCloseTo(800);
    expect(exponentialBackoff({ baseMs: 1_000, jitter: 0.2, random: () => 1 })(0)).toBeCloseTo(
      1_200,
    );
  });

  it('rejects nonsensical settings', () => {
    expect(() => exponentialBackoff({ multiplier: 0.5 })).toThrow(RangeError);
    expect(() => exponentialBackoff({ baseMs: Number.NaN })).toThrow(RangeError);
  });
});
