import { once } from 'node:events';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Metadata } from 'nice-grpc-common';
import { describe, expect, it } from 'vitest';
import { type CallScope, currentCallScope, runInCallScope, scopedGenerator } from '../src/index.js';

function scopeFor(method: string): CallScope {
  const inbound = Metadata({ traceparent: method });
  return {
    method,
    deadline: undefined,
    signal: new AbortController().signal,
    forwardMetadata: inbound,
    peer: undefined,
    inbound,
  };
}

describe('call scope', () => {
  it('is absent outside a call', () => {
    expect(currentCallScope()).toBeUndefined();
  });

  it('survives awaits, timers, immediates and stream events without leaking between 1,000 interleaved tasks', async () => {
    const seen = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) =>
        runInCallScope(scopeFor(`/t.S/M${i}`), async () => {
          const methods: (string | undefined)[] = [];
          await sleep(i % 7);
          methods.push(currentCallScope()?.method);
          await new Promise<void>((resolve) =>
            setTimeout(() => {
              methods.push(currentCallScope()?.method);
              resolve();
            }, i % 5),
          );
          await new Promise<void>((resolve) =>
            setImmediate(() => {
              methods.push(currentCallScope()?.method);
              resolve();
            }),
          );
          const stream = Readable.from(['a', 'b']);
          stream.on('data', () => methods.push(currentCallScope()?.method));
          await once(stream, 'end');
          return methods;
        }),
      ),
    );
    seen.forEach((methods, i) => {
      expect(methods).toEqual(Array(5).fill(`/t.S/M${i}`));
    });
    expect(currentCallScope()).toBeUndefined();
  });

  it('nests: an inner scope shadows the outer one only inside it', async () => {
    await runInCallScope(scopeFor('/outer'), async () => {
      await runInCallScope(scopeFor('/inner'), async () => {
        await sleep(1);
        expect(currentCallScope()?.method).toBe('/inner');
      });
      expect(currentCallScope()?.method).toBe('/outer');
    });
  });

  it('runs every step of a generator in the scope, whoever iterates it', async () => {
    async function* body(): AsyncGenerator<string | undefined, string | undefined, undefined> {
      yield currentCallScope()?.method;
      await sleep(1);
      yield currentCallScope()?.method;
      return currentCallScope()?.method;
    }
    const generator = scopedGenerator(scopeFor('/gen'), body());
    // Iterated from outside any scope, like nice-grpc iterates a handler.
    expect(await generator.next()).toEqual({ done: false, value: '/gen' });
    expect(await generator.next()).toEqual({ done: false, value: '/gen' });
    expect(await generator.next()).toEqual({ done: true, value: '/gen' });
  });

  it('lets the wrapped generator clean up when the consumer stops early', async () => {
    let cleanedUpIn: string | undefined = 'never';
    async function* body() {
      try {
        yield 1;
        yield 2;
      } finally {
        cleanedUpIn = currentCallScope()?.method;
      }
    }
    for await (const value of scopedGenerator(scopeFor('/early'), body())) {
      expect(value).toBe(1);
      break;
    }
    expect(cleanedUpIn).toBe('/early');
  });

  it('forwards errors thrown into it and out of it', async () => {
    async function* body() {
      try {
        yield 1;
      } catch (error) {
        throw new Error(`handled ${(error as Error).message} in ${currentCallScope()?.method}`);
      }
    }
    const generator = scopedGenerator(scopeFor('/err'), body());
    await generator.next();
    await expect(generator.throw(new Error('boom'))).rejects.toThrow('handled boom in /err');
  });
});
