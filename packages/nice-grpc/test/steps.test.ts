import { describe, expect, it, vi } from 'vitest';
import { lazySteps, settleSteps, tapSteps } from '../src/index.js';

async function* counting(log: string[], fail?: Error): AsyncGenerator<number, string, undefined> {
  try {
    yield 1;
    yield 2;
    if (fail) throw fail;
    return 'done';
  } finally {
    log.push('inner finally');
  }
}

async function collect<T, R>(steps: AsyncGenerator<T, R, undefined>): Promise<[T[], R]> {
  const values: T[] = [];
  let step = await steps.next();
  while (!step.done) {
    values.push(step.value);
    step = await steps.next();
  }
  return [values, step.value];
}

describe('settleSteps', () => {
  it('passes every step through and settles once, after the last', async () => {
    const settle = vi.fn();
    const steps = settleSteps(counting([]), settle);
    expect(await steps.next()).toEqual({ done: false, value: 1 });
    expect(settle).not.toHaveBeenCalled();
    expect(await collect(steps)).toEqual([[2], 'done']);
    expect(settle).toHaveBeenCalledTimes(1);
    expect(settle).toHaveBeenCalledWith('done', undefined);
  });

  it('settles with the error the steps failed with, and lets it replace that error', async () => {
    const failure = new Error('boom');
    const seen: unknown[] = [];
    const steps = settleSteps(counting([], failure), (end, error) => {
      seen.push(end, error);
      throw new Error('replaced');
    });
    await expect(collect(steps)).rejects.toThrow('replaced');
    expect(seen).toEqual(['failed', failure]);
  });

  it('a settle that throws replaces a success too, as a throw in a finally block does', async () => {
    const steps = settleSteps(counting([]), () => {
      throw new Error('expired');
    });
    await expect(collect(steps)).rejects.toThrow('expired');
  });

  it('settles when the consumer stops early, after the inner generator ran its finally', async () => {
    const log: string[] = [];
    const steps = settleSteps(counting(log), (end) => log.push(end));
    for await (const value of steps) if (value === 1) break;
    expect(log).toEqual(['inner finally', 'stopped']);
  });

  it('forwards throw() into the steps', async () => {
    const settle = vi.fn();
    const steps = settleSteps(counting([]), settle);
    await steps.next();
    await expect(steps.throw(new Error('from consumer'))).rejects.toThrow('from consumer');
    expect(settle).toHaveBeenCalledTimes(1);
  });
});

describe('lazySteps', () => {
  it('creates the steps at the first iteration, not before', async () => {
    const start = vi.fn(() => counting([]));
    const steps = lazySteps(start);
    expect(start).not.toHaveBeenCalled();
    expect(await collect(steps)).toEqual([[1, 2], 'done']);
    expect(start).toHaveBeenCalledTimes(1);
  });

  it('turns an error thrown by start into a rejected step', async () => {
    const steps = lazySteps<number, string>(() => {
      throw new Error('no start');
    });
    await expect(steps.next()).rejects.toThrow('no start');
  });

  it('never starts when the consumer stops first', async () => {
    const start = vi.fn(() => counting([]));
    const steps = lazySteps(start);
    expect(await steps.return('early')).toEqual({ done: true, value: 'early' });
    await expect(steps.throw(new Error('stop'))).rejects.toThrow('stop');
    expect(start).not.toHaveBeenCalled();
  });
});

describe('tapSteps', () => {
  it('shows every step, messages then the return value, to onStep as it resolves', async () => {
    const seen: unknown[] = [];
    const steps = tapSteps(counting([]), (step) =>
      seen.push(step.done ? `end:${step.value}` : step.value),
    );
    expect(await collect(steps)).toEqual([[1, 2], 'done']);
    expect(seen).toEqual([1, 2, 'end:done']);
  });

  it('does not read its source before it is iterated', async () => {
    let read = false;
    const source = {
      async *[Symbol.asyncIterator]() {
        read = true;
        yield 1;
      },
    };
    const steps = tapSteps(source, () => {});
    expect(read).toBe(false);
    expect(await steps.next()).toEqual({ done: false, value: 1 });
    expect(read).toBe(true);
  });

  it('passes an early return on to its source, which runs its finally blocks', async () => {
    const log: string[] = [];
    const steps = tapSteps(counting(log), () => {});
    for await (const value of steps) if (value === 1) break;
    expect(log).toEqual(['inner finally']);
  });

  it('passes failures through', async () => {
    const steps = tapSteps(counting([], new Error('boom')), () => {});
    await expect(collect(steps)).rejects.toThrow('boom');
  });
});
