import { type CallMethod, callMethod } from '@switchyard/core';

/** Distinct method paths whose view is kept; calls to more (a scan, garbage paths) get a fresh one. */
const MAX_METHODS = 1_000;
const methods = new Map<string, CallMethod>();

/**
 * Core's view of a method the proxy forwards, from its path alone: a proxy does not know the
 * method's stream kinds. One object per path, so that layers' per-method caches (metrics cells,
 * span names) hit; the cache is bounded, because clients choose the paths.
 */
export function methodOf(path: string): CallMethod {
  let method = methods.get(path);
  if (method === undefined) {
    method = callMethod(path);
    if (methods.size < MAX_METHODS) methods.set(path, method);
  }
  return method;
}
