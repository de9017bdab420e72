import { describe, expect, it } from 'vitest';
import { DeadlineQueue } from '../src/index.js';

function entry(inMs: number, fired: string[], name: string) {
  return { at: Date.now() + inMs, expire: () => fired.push(name) };
}

describe('DeadlineQueue', () => {
  it('expires each entry at its time, the earliest first, whatever order they came in', async () => {
    const queue = new DeadlineQueue();
    const fired: string[] = [];
    const started = Date.now();
    queue.add(entry(120, fired, 'late'));
    queue.add(entry(40, fired, 'early'));
    queue.add(entry(80, fired, 'middle'));
    await expect.poll(() => fired.length, { timeout: 2_000 }).toBe(3);
    expect(fired).toEqual(['early', 'middle', 'late']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(120);
  });

  it('never expires an entry deleted before its time', async () => {
    const queue = new DeadlineQueue();
    const fired: string[] = [];
    const gone = entry(30, fired, 'gone');
    queue.add(gone);
    queue.add(entry(60, fired, 'kept'));
    queue.delete(gone);
    await expect.poll(() => fired, { timeout: 2_000 }).toEqual(['kept']);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fired).toEqual(['kept']);
  });

  it('re-arms for an entry earlier than the one it waits for', async () => {
    const queue = new DeadlineQueue();
    const fired: string[] = [];
    queue.add(entry(10_000, fired, 'far'));
    const started = Date.now();
    queue.add(entry(20, fired, 'near'));
    await expect.poll(() => fired, { timeout: 1_000 }).toEqual(['near']);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
