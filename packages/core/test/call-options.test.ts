import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { withCallOptions } from '../src/index.js';

setFlagsFromString('--allow-natives-syntax');
// Compiled after the flag is set, so V8 parses its intrinsic.
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (
  a: object,
  b: object,
) => boolean;

describe('withCallOptions', () => {
  it('copies the options with the changes applied, leaving the original as it was', () => {
    const signal = new AbortController().signal;
    const options = { deadline: 1000, signal };
    const changed = withCallOptions<{ deadline?: number; signal?: AbortSignal; retry?: boolean }>(
      options,
      { retry: true, deadline: undefined },
    );
    expect(changed).toEqual({ deadline: undefined, signal, retry: true });
    expect(options).toEqual({ deadline: 1000, signal });
  });

  it("gives every call's copy one hidden class, where a spread adding a key gives each its own", () => {
    // The shape nice-grpc hands a middleware: its merge of default and call options.
    const callOptions = () => ({ ...{}, ...{ retry: true } });
    // Many calls, as in a running client: the spread's maps part once its inline cache warms up.
    const calls = 1000;
    const copies = Array.from({ length: calls }, () =>
      withCallOptions<object>(callOptions(), { onTrailer: () => {} }),
    );
    expect(copies.every((copy) => haveSameMap(copy, copies[0]!))).toBe(true);
    // What this function exists to avoid; if V8 stops doing this, the function can go.
    const spread = Array.from({ length: calls }, () => ({ ...callOptions(), onTrailer: () => {} }));
    expect(haveSameMap(spread[calls - 2]!, spread[calls - 1]!)).toBe(false);
  });
});
