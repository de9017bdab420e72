import { setTimeout as sleep } from 'node:timers/promises';
import { Status } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import {
  type CallVerdict,
  EjectionBudget,
  OutlierEjection,
  type OutlierOptions,
} from '../src/index.js';

/** Short, unjittered ejections, so that a test waits a known few milliseconds. */
const fast: OutlierOptions = {
  consecutiveFailures: 3,
  ejectionBackoff: { baseMs: 30, maxMs: 120, jitter: 0 },
};

/** One endpoint's ejection with a record of what it told its transport. */
function endpoint(options: OutlierOptions = fast, budget = new EjectionBudget(100)) {
  const log: string[] = [];
  let readinessChanges = 0;
  const ejection = new OutlierEjection(options, budget, {
    ejected: (failures, ms) => log.push(`ejected after ${failures} for ${Math.round(ms)} ms`),
    restored: () => log.push('restored'),
    readinessChanged: () => {
      readinessChanges++;
    },
  });
  /** A call sent and ended with `verdict`; returns whether it was the probe. */
  const call = (verdict: CallVerdict) => {
    const probe = ejection.sent();
    ejection.finished(probe, verdict);
    return probe;
  };
  return { ejection, log, call, readinessChanges: () => readinessChanges };
}

describe('OutlierEjection', () => {
  it('ejects after the configured consecutive failures; a success in between resets the count', () => {
    const { ejection, log, call } = endpoint();
    call('failed');
    call('failed');
    call('succeeded');
    call('failed');
    call('failed');
    expect(ejection.isReady()).toBe(true);
    call('failed');
    expect(ejection.state).toBe('open');
    expect(ejection.isReady()).toBe(false);
    expect(ejection.notReadyReason()).toMatch(
      /^ejected after 3 consecutive failures, probing in \d+ ms$/,
    );
    expect(log).toEqual(['ejected after 3 for 30 ms']);
    ejection.close();
  });

  it('lets exactly one probe through after the ejection; its success restores the endpoint', async () => {
    const { ejection, log, call, readinessChanges } = endpoint();
    for (let i = 0; i < 3; i++) call('failed');
    await sleep(50);
    expect(ejection.state).toBe('half-open');
    expect(ejection.isReady()).toBe(true);
    const probe = ejection.sent();
    expect(probe).toBe(true);
    // The probe is in flight: no second call may go.
    expect(ejection.isReady()).toBe(false);
    expect(ejection.sent()).toBe(false);
    expect(ejection.notReadyReason()).toBe('ejected, a probe call is in flight');
    expect(ejection.probing).toBe(true);
    ejection.finished(probe, 'succeeded');
    expect(ejection.state).toBe('closed');
    expect(ejection.isReady()).toBe(true);
    expect(log).toEqual(['ejected after 3 for 30 ms', 'restored']);
    // ejected, half-open, probe sent, restored.
    expect(readinessChanges()).toBe(4);
    ejection.close();
  });

  it('ejects again for twice as long when the probe fails, and resets the backoff once restored', async () => {
    const { ejection, log, call } = endpoint();
    for (let i = 0; i < 3; i++) call('failed');
    await sleep(50);
    expect(call('failed')).toBe(true);
    expect(ejection.state).toBe('open');
    await sleep(80);
    expect(call('succeeded')).toBe(true);
    for (let i = 0; i < 3; i++) call('failed');
    expect(log).toEqual([
      'ejected after 3 for 30 ms',
      'ejected after 3 for 60 ms',
      'restored',
      'ejected after 3 for 30 ms',
    ]);
    ejection.close();
  });

  it('takes no verdict from calls sent before the ejection, nor from an abandoned probe', async () => {
    const { ejection, call } = endpoint();
    // Sent while closed, still running when the endpoint is ejected.
    const late = [ejection.sent(), ejection.sent()];
    for (let i = 0; i < 3; i++) call('failed');
    await sleep(50);
    for (const probe of late) ejection.finished(probe, 'succeeded');
    expect(ejection.state).toBe('half-open');
    // The client cancelled the probe: another call may probe.
    expect(call('abandoned')).toBe(true);
    expect(ejection.isReady()).toBe(true);
    expect(call('succeeded')).toBe(true);
    expect(ejection.state).toBe('closed');
    ejection.close();
  });

  it('counts only failure codes as failures', () => {
    const { ejection } = endpoint();
    expect(
      [Status.UNAVAILABLE, Status.INTERNAL, Status.UNKNOWN, Status.DATA_LOSS].every((code) =>
        ejection.isFailure(code),
      ),
    ).toBe(true);
    expect(ejection.isFailure(Status.NOT_FOUND)).toBe(false);
    const custom = endpoint({ ...fast, failureCodes: [Status.RESOURCE_EXHAUSTED] }).ejection;
    expect(custom.isFailure(Status.RESOURCE_EXHAUSTED)).toBe(true);
    expect(custom.isFailure(Status.UNAVAILABLE)).toBe(false);
    ejection.close();
    custom.close();
  });

  it('ignores verdicts after close and gives its budget slot back', () => {
    const budget = new EjectionBudget(10);
    const a = endpoint(fast, budget);
    const b = endpoint(fast, budget);
    for (let i = 0; i < 3; i++) a.call('failed');
    expect(a.ejection.state).toBe('open');
    // 2 endpoints × 10% rounds down to 0, but one may always be ejected: and only one.
    for (let i = 0; i < 3; i++) b.call('failed');
    expect(b.ejection.state).toBe('closed');
    a.ejection.close();
    a.call('failed');
    expect(a.log).toEqual(['ejected after 3 for 30 ms']);
    // a's slot is free again: b's next failure ejects it.
    b.call('failed');
    expect(b.ejection.state).toBe('open');
    b.ejection.close();
  });

  it('rejects options that make no sense, naming them', () => {
    expect(() => new OutlierEjection({ consecutiveFailures: 0 }, new EjectionBudget())).toThrow(
      'consecutiveFailures must be a whole number ≥ 1, not 0',
    );
    expect(() => new EjectionBudget(150)).toThrow(
      'maxEjectedPercent must be within 0..100, not 150',
    );
  });
});

describe('EjectionBudget', () => {
  it('caps ejections at maxEjectedPercent of the members, at least one', () => {
    const budget = new EjectionBudget(25);
    for (let i = 0; i < 8; i++) budget.join();
    expect([budget.tryEject(), budget.tryEject(), budget.tryEject()]).toEqual([true, true, false]);
    budget.release();
    expect(budget.tryEject()).toBe(true);
    const small = new EjectionBudget(10);
    small.join();
    expect([small.tryEject(), small.tryEject()]).toEqual([true, false]);
  });
});
