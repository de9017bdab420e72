import type { PeerIdentity } from '@switchyard/core';
import {
  type CallContext,
  type ClientMiddleware,
  Metadata,
  type ServerMiddleware,
  type ServerMiddlewareCall,
} from 'nice-grpc-common';
import { type CallState, callState } from './call-state.js';

/**
 * What an outgoing call inherits from the inbound call being served: its deadline, its
 * cancellation, the metadata worth passing on (trace context) and who called.
 */
export interface CallScope {
  /** The inbound call's path, `/package.Service/Method`. */
  readonly method: string;
  /** When the inbound call's budget runs out; `undefined` when its client set none. */
  readonly deadline: Date | undefined;
  /** Aborts when the inbound call ends early: cancelled by its client or past its deadline. */
  readonly signal: AbortSignal;
  /** Headers that outgoing calls pass on unchanged, e.g. `traceparent`. */
  readonly forwardMetadata: Metadata;
  /** The verified caller, when identity middleware has established one. */
  readonly peer: PeerIdentity | undefined;
  /**
   * The inbound call's request metadata. Server middleware uses it to tell whether the
   * current scope belongs to the call it is handling (see {@link serveInCallScope}).
   */
  readonly inbound: Metadata;
}

/** The changes a server middleware makes to the scope of the call it handles. */
export type CallScopePatch = Partial<
  Pick<CallScope, 'deadline' | 'signal' | 'forwardMetadata' | 'peer'>
>;

/** Headers forwarded by default: W3C trace context and baggage. */
export const DEFAULT_FORWARD_HEADERS: readonly string[] = ['traceparent', 'tracestate', 'baggage'];

/** The scope of the inbound call whose handler is running, if any. */
export function currentCallScope(): CallScope | undefined {
  return callState.getStore()?.scope;
}

/** Runs `fn` (and everything it schedules) inside `scope`. */
export function runInCallScope<R>(scope: CallScope, fn: () => R): R {
  return callState.run(stateOf(scope), fn);
}

function stateOf(scope: CallScope): CallState {
  return { call: undefined, path: undefined, scope };
}

/**
 * Wraps a generator so that its body runs inside `scope`.
 *
 * `AsyncLocalStorage.run` around creating a generator is not enough: a generator's body runs
 * when it is iterated, in the iterating caller's context. So every step (`next`, `throw`,
 * `return`) is started inside the scope; awaits within a step then keep it.
 */
export function scopedGenerator<T, R>(
  scope: CallScope,
  generator: AsyncGenerator<T, R, undefined>,
): AsyncGenerator<T, R, undefined> {
  return stepsInState(stateOf(scope), generator);
}

async function* stepsInState<T, R>(
  state: CallState,
  generator: AsyncGenerator<T, R, undefined>,
): AsyncGenerator<T, R, undefined> {
  let done = false;
  try {
    let step = await callState.run(state, () => generator.next());
    while (!step.done) {
      try {
        yield step.value;
      } catch (error) {
        step = await callState.run(state, () => generator.throw(error));
        continue;
      }
      step = await callState.run(state, () => generator.next());
    }
    done = true;
    return step.value;
  } catch (error) {
    done = true;
    throw error;
  } finally {
    // The consumer stopped early (break/return): let the wrapped generator run its finally blocks.
    if (!done) await callState.run(state, () => generator.return(undefined as R));
  }
}

/**
 * Runs a server middleware's continuation inside the scope of the call it handles.
 *
 * Several server middleware contribute to one scope (deadline, identity, tracing), in whatever
 * order they were installed. The first to run creates the scope from the call context; the
 * others refine that same scope object in place. They recognise "their" call by its request
 * metadata object, which nice-grpc passes unchanged down the whole middleware chain of one call
 * even when a middleware extends the context; a scope inherited from elsewhere (a server started
 * inside a handler) is never mistaken for it.
 *
 * On a server created with `withInboundCall` (see inbound-call.ts) the handler already runs
 * inside the state the interceptor entered for this call, so the scope is simply recorded there
 * and `next()` is returned as it is: no storage to enter, no generator to wrap. Elsewhere the
 * continuation's every step is run inside a state of its own ({@link scopedGenerator}).
 */
export function serveInCallScope<T, R>(
  method: string,
  context: CallContext,
  patch: CallScopePatch,
  next: () => AsyncGenerator<T, R, undefined>,
): AsyncGenerator<T, R, undefined> {
  const state = callState.getStore();
  const current = state?.scope;
  if (current?.inbound === context.metadata) {
    Object.assign(current, patch);
    return next();
  }
  const scope: CallScope = {
    method,
    deadline: undefined,
    signal: context.signal,
    forwardMetadata: pickMetadata(context.metadata, DEFAULT_FORWARD_HEADERS),
    peer: undefined,
    inbound: context.metadata,
    ...patch,
  };
  if (state !== undefined && current === undefined && state.path === method) {
    state.scope = scope;
    return next();
  }
  const own = stateOf(scope);
  return stepsInState(own, callState.run(own, next));
}

/** Copies the named headers (all their values) out of `metadata`. */
export function pickMetadata(metadata: Metadata, keys: readonly string[]): Metadata {
  const picked = Metadata();
  for (const key of keys) {
    const values = metadata.getAll(key);
    if (values.length > 0) picked.set(key, values as string[]);
  }
  return picked;
}

/** Options of {@link callScopeServerMiddleware}. */
export interface CallScopeServerOptions {
  /** Request headers that outgoing calls made by the handler pass on. */
  forwardHeaders?: readonly string[];
}

/**
 * Server middleware that enters the call scope for every inbound call, so that calls made by
 * its handler can find it. Deadline, identity and tracing middleware enter it too; install this
 * one on its own when none of them is used, or to choose which headers are forwarded.
 */
export function callScopeServerMiddleware({
  forwardHeaders = DEFAULT_FORWARD_HEADERS,
}: CallScopeServerOptions = {}): ServerMiddleware {
  return <Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ) => {
    const forwardMetadata = pickMetadata(context.metadata, forwardHeaders);
    const current = currentCallScope();
    if (current?.inbound === context.metadata) {
      // A middleware installed before this one (tracing) may already have replaced a header
      // with its own span's context; that value, not the request's, is the one to pass on.
      for (const [key, values] of current.forwardMetadata) forwardMetadata.set(key, values);
    }
    return serveInCallScope<Response, Response | void>(
      call.method.path,
      context,
      { forwardMetadata },
      () => call.next(call.request, context),
    );
  };
}

/**
 * Client middleware that sends the current scope's forwarded headers with every outgoing call,
 * unless the call sets them itself.
 */
export const forwardScopeMetadata: ClientMiddleware = (call, options) => {
  const scope = currentCallScope();
  if (scope === undefined || isEmpty(scope.forwardMetadata))
    return call.next(call.request, options);
  const metadata = Metadata(options.metadata);
  for (const [key, values] of scope.forwardMetadata) {
    if (!metadata.has(key)) metadata.set(key, values);
  }
  return call.next(call.request, { ...options, metadata });
};

function isEmpty(metadata: Metadata): boolean {
  return metadata[Symbol.iterator]().next().done === true;
}
