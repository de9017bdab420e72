import { describe, expect, it } from 'vitest';
import { encodeGrpcTimeout, GrpcTimeoutError, parseGrpcTimeout } from '../src/index.js';

describe('grpc-timeout', () => {
  it.each([
    ['1H', 3_600_000],
    ['2M', 120_000],
    ['3S', 3_000],
    ['4m', 4],
    ['5000u', 5],
    ['6000000n', 6],
    ['99999999S', 99_999_999_000],
    ['0m', 0],
    ['00000001m', 1],
  ])('parses %s as %d ms', (value, ms) => {
    expect(parseGrpcTimeout(value)).toBe(ms);
  });

  it.each([
    ['H', 3_600_000],
    ['M', 60_000],
    ['S', 1_000],
    ['m', 1],
    ['u', 0.001],
    ['n', 0.000001],
  ])('round-trips values in unit %s', (unit, unitMs) => {
    for (const count of [1, 7, 999, 12_345, 99_999_999]) {
      const ms = count * unitMs;
      const encoded = encodeGrpcTimeout(ms);
      expect(encoded).toMatch(/^\d{1,8}[HMSmun]$/);
      // Encoding picks the finest unit that fits, so the value may change unit but never shrink.
      const parsed = parseGrpcTimeout(encoded);
      expect(parsed).toBeGreaterThanOrEqual(ms * (1 - 1e-12));
      expect(parsed - ms).toBeLessThan(Math.max(ms * 1e-7, 1e-6));
      expect(parseGrpcTimeout(`${count}${unit}`)).toBeCloseTo(ms, 9);
    }
  });

  it('encodes in the finest unit that fits 8 digits, rounding up', () => {
    expect(encodeGrpcTimeout(1)).toBe('1000000n');
    expect(encodeGrpcTimeout(250)).toBe('250000u');
    expect(encodeGrpcTimeout(100_000)).toBe('100000m');
    expect(encodeGrpcTimeout(0.0000015)).toBe('2n');
    expect(encodeGrpcTimeout(0.1 + 0.2)).toBe('300000n');
    expect(encodeGrpcTimeout(1e20)).toBe('99999999H');
    expect(encodeGrpcTimeout(0)).toBe('0n');
    expect(encodeGrpcTimeout(-5)).toBe('0n');
    expect(() => encodeGrpcTimeout(Number.NaN)).toThrow(RangeError);
  });

  it('encodes whole milliseconds exactly as the spec says, around every unit boundary', () => {
    // Reference in exact integer arithmetic: the finest unit whose value fits 8 digits.
    const units: [string, bigint, bigint][] = [
      ['n', 1_000_000n, 1n],
      ['u', 1_000n, 1n],
      ['m', 1n, 1n],
      ['S', 1n, 1_000n],
      ['M', 1n, 60_000n],
      ['H', 1n, 3_600_000n],
    ];
    const reference = (ms: number) => {
      for (const [unit, multiply, divide] of units) {
        const value = (BigInt(ms) * multiply + divide - 1n) / divide;
        if (value <= 99_999_999n) return `${value}${unit}`;
      }
      return '99999999H';
    };
    const boundaries = [1, 99, 100, 99_999, 100_000, 99_999_999, 100_000_000, 2_147_483_000];
    const samples = boundaries.flatMap((ms) => [ms - 1, ms, ms + 1]).filter((ms) => ms > 0);
    for (let ms = 1; ms < 2e9; ms = Math.ceil(ms * 1.37)) samples.push(ms);
    for (const ms of samples) expect(encodeGrpcTimeout(ms)).toBe(reference(ms));
  });

  const malformed = [
    '',
    'S',
    '1',
    '10',
    '123456789S',
    '-1S',
    '+1S',
    ' 1S',
    '1S ',
    '1 S',
    '1.5S',
    '1s',
    '1h',
    '1x',
    '1SS',
    '0x10S',
    '1e3m',
    'NaNS',
    'InfinityS',
    '１S',
    '1\u0000S',
  ];
  it.each(malformed)('rejects %j with a typed error', (value) => {
    let caught: unknown;
    try {
      parseGrpcTimeout(value);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(GrpcTimeoutError);
    expect((caught as GrpcTimeoutError).value).toBe(value);
    expect((caught as GrpcTimeoutError).message).toContain('malformed grpc-timeout');
  });

  it('names the reason', () => {
    expect(() => parseGrpcTimeout('123456789S')).toThrow(/more than 8 digits/);
    expect(() => parseGrpcTimeout('100')).toThrow(/missing unit/);
  });
});
