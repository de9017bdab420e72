import { describe, expect, it } from 'vitest';
import { PeakEwma } from '../src/index.js';

function manualClock(start = 0) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

describe('PeakEwma', () => {
  it('starts new endpoints at 30 ms with cost rtt × (pending + 1)', () => {
    const clock = manualClock();
    const load = new PeakEwma({ now: clock.now });
    expect(load.cost()).toBe(30);
    load.start();
    load.start();
    expect(load.pending).toBe(2);
    expect(load.cost()).toBe(90);
  });

  it('replaces the estimate at once with a sample above it', () => {
    const clock = manualClock();
    const load = new PeakEwma({ now: clock.now });
    const startedAt = load.start();
    clock.t += 200;
    load.settle(startedAt);
    expect(load.pending).toBe(0);
    expect(load.rttMs).toBe(200);
  });

  it('moves towards a lower sample with weight 1 − e^(−Δt/τ), τ = 10 s', () => {
    const clock = manualClock();
    const load = new PeakEwma({ defaultRttMs: 100, now: clock.now });
    clock.t += 10_000;
    const startedAt = load.start();
    load.settle(startedAt); // rtt 0 after one time constant
    expect(load.rttMs).toBeCloseTo(100 * Math.exp(-1), 10);

    const slow = new PeakEwma({ defaultRttMs: 100, now: clock.now });
    clock.t += 1_000;
    const at = slow.start();
    clock.t += 10;
    slow.settle(at); // a 10 ms sample 1.01 s after the last update
    const decay = Math.exp(-1010 / 10_000);
    expect(slow.rttMs).toBeCloseTo(100 * decay + 10 * (1 - decay), 10);
  });

  it('decays an idle estimate so an avoided endpoint is tried again', () => {
    const clock = manualClock();
    const load = new PeakEwma({ now: clock.now });
    const at = load.start();
    clock.t += 500;
    load.settle(at);
    clock.t += 20_000;
    expect(load.cost()).toBeCloseTo(500 * Math.exp(-2), 10);
  });

  it('one fast answer does not undo a slow spell', () => {
    const clock = manualClock();
    const load = new PeakEwma({ now: clock.now });
    let at = load.start();
    clock.t += 80;
    load.settle(at);
    at = load.start();
    clock.t += 1;
    load.settle(at);
    expect(load.rttMs).toBeGreaterThan(79);
  });

  it('rejects nonsensical options', () => {
    expect(() => new PeakEwma({ decayMs: 0 })).toThrow(RangeError);
    expect(() => new PeakEwma({ defaultRttMs: -1 })).toThrow(RangeError);
  });
});
