import { describe, expect, it } from 'vitest';
import { parseDuration } from '../src/index.js';

describe('parseDuration', () => {
  it('reads each unit', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5s')).toBe(5_000);
    expect(parseDuration('1.5m')).toBe(90_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration(' 0s ')).toBe(0);
  });

  it('refuses a bare number, an unknown unit and negative values', () => {
    for (const text of ['5', '5 s', '5sec', '-1s', 's', '1e3ms', '']) {
      expect(parseDuration(text)).toBeUndefined();
    }
  });
});
