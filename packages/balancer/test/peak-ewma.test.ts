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

  it('takes a sample above the estimate at once, as a peak that fades with τ = 500 ms', () => {
    const clock = manualClock();
    const load = new PeakEwma({ now: clock.now });
    const startedAt = load.start();
    clock.t += 200;
    load.settle(startedAt);
    expect(load.pending).toBe(0);
    expect(load.rttMs).toBe(200);
    clock.t += 500;
    // The peak has faded by e; the average (the default and the sample, a mean of two) by 5%.
    expect(load.rttMs).toBeCloseTo(Math.max(200 * Math.exp(-1), 115 * Math.exp(-0.05)), 10);
  });

  it('makes the first samples a plain mean with the default, then weighs them 1 − e^(−Δt/τ)', () => {
    const clock = manualClock();
    const load = new PeakEwma({ defaultRttMs: 30, peakDecayMs: 1, now: clock.now });
    // 1,000 answers of 0.5 ms, 4 ms apart (250 a second): the default is one of 1,001.
    for (let i = 0; i < 1_000; i++) {
      clock.t += 3.5;
      const at = load.start();
      clock.t += 0.5;
      load.settle(at);
    }
    expect(load.rttMs).toBeLessThan(0.6);
    expect(load.rttMs).toBeGreaterThan(0.5);

    // Past 2,500 samples at this pace, 1 − e^(−4 ms/10 s) weighs more than 1/(n + 1).
    const steady = new PeakEwma({ defaultRttMs: 100, now: clock.now });
    clock.t += 10_000;
    const at = steady.start();
    steady.settle(at); // rtt 0 after one time constant: weight 1 − 1/e > 1/2
    expect(steady.rttMs).toBeCloseTo(100 * Math.exp(-1), 10); // the peak: 100 · e^(−20)
  });

  it('forgets a pause that held every answer in seconds, not in half a minute', () => {
    const clock = manualClock();
    const load = new PeakEwma({ now: clock.now });
    const answer = (ms: number) => {
      const at = load.start();
      clock.t += ms;
      load.settle(at);
      clock.t += 4 - ms;
    };
    for (let i = 0; i < 2_500; i++) answer(0.5); // ten seconds of 250 answers a second
    answer(130); // one stalled answer
    for (let i = 0; i < 500; i++) answer(0.5); // two seconds more
    expect(load.rttMs).toBeLessThan(5);
  });

  it('prices a peak once, and the queue of pending calls at the usual pace', () => {
    const clock = manualClock();
    const load = new PeakEwma({ now: clock.now });
    for (let i = 0; i < 1_000; i++) {
      const at = load.start();
      clock.t += 0.5;
      load.settle(at);
      clock.t += 3.5;
    }
    const at = load.start();
    clock.t += 20; // one answer held 20 ms (a pause of the backend's process)
    load.settle(at);
    load.start(); // one call pending
    expect(load.cost()).toBeCloseTo(20, 0); // not 40: the peak times the queue
    for (let i = 0; i < 9; i++) load.start();
    clock.t += 2_000; // the peak has faded; ten pending at ~0.5 ms each
    expect(load.cost()).toBeGreaterThan(4);
    expect(load.cost()).toBeLessThan(7);
  });

  it('decays an idle estimate so an avoided endpoint is tried again', () => {
    const clock = manualClock();
    const load = new PeakEwma({ now: clock.now });
    const at = load.start();
    clock.t += 500;
    load.settle(at);
    // Average: the mean of the default (30) and the sample (500); then 20 s, 2 τ, of no answer.
    clock.t += 20_000;
    expect(load.cost()).toBeCloseTo(265 * Math.exp(-2), 10);
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

  it('an endpoint slow at every answer stays priced slow once its peak has faded', () => {
    const clock = manualClock();
    const load = new PeakEwma({ now: clock.now });
    for (let i = 0; i < 20; i++) {
      const at = load.start();
      clock.t += 50;
      load.settle(at);
      clock.t += 2_000; // avoided: tried every 2 s
    }
    expect(load.rttMs).toBeGreaterThan(40);
  });

  it('rejects nonsensical options', () => {
    expect(() => new PeakEwma({ decayMs: 0 })).toThrow(RangeError);
    expect(() => new PeakEwma({ defaultRttMs: -1 })).toThrow(RangeError);
    expect(() => new PeakEwma({ peakDecayMs: 0 })).toThrow(RangeError);
  });
});
