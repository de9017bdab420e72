import {
  type Call,
  type CallTransport,
  callMethod,
  type Headers,
  type PeerIdentity,
} from '@switchyard/core';
import { Metadata } from 'nice-grpc-common';
import { type CallState, callState } from './call-state.js';
import { MetadataHeaders, toMetadata } from './metadata-headers.js';

/**
 * What an outgoing call inherits from the inbound call being served: its deadline, its
 * cancellation, the metadata worth passing on (trace context) and who called. A view of the
 * served call's core {@link Call} (see {@link currentServedCall}), for code written against
 * nice-grpc types.
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
  /** The inbound call's request metadata. */
  readonly inbound: Metadata;
}

/** Headers forwarded by default: W3C trace context and baggage. */
export const DEFAULT_FORWARD_HEADERS: readonly string[] = ['traceparent', 'tracestate', 'baggage'];

/**
 * Core's view of the inbound call whose handler is running — its deadline, signal, caller and
 * the headers it forwards, as the server layers established them — or `undefined` outside a
 * handler (or on a server with no Switchyard server middleware). The client adapter makes it
 * the `inbound` of every call made from there.
 */
export function currentServedCall(): Call | undefined {
  return callState.getStore()?.served;
}

/** The scope of the inbound call whose handler is running, if any. */
export function currentCallScope(): CallScope | undefined {
  const served = currentServedCall();
  if (served === undefined) return undefined;
  return {
    method: served.method.path,
    deadline: served.deadline === undefined ? undefined : new Date(served.deadline),
    // A served call always has one: its context's.
    signal: served.signal!,
    forwardMetadata: toMetadata(served.transport.forwardHeaders) ?? Metadata(),
    // Who called, not how it was proven: a certificate stays with the served call.
    peer: served.peer && { id: served.peer.id, source: served.peer.source },
    inbound: toMetadata(served.headers) ?? Metadata(),
  };
}

/** Runs `fn` (and everything it schedules) inside `scope`. */
export function runInCallScope<R>(scope: CallScope, fn: () => R): R {
  return callState.run(stateOf(callOfScope(scope)), fn);
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
  return stepsServing(callOfScope(scope), generator);
}

/** The steps of `generator`, each run with `served` as the call being served. */
export function stepsServing<T, R>(
  served: Call,
  generator: AsyncGenerator<T, R, undefined>,
): AsyncGenerator<T, R, undefined> {
  return stepsInState(stateOf(served), generator);
}

/** Runs `fn` with `served` as the call being served, in a state of its own. */
export function runServing<R>(served: Call, fn: () => R): R {
  return callState.run(stateOf(served), fn);
}

function stateOf(served: Call): CallState {
  return { call: undefined, path: undefined, served };
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

/** A served call for code that states its scope itself (tests, bridges from other frameworks). */
function callOfScope(scope: CallScope): Call {
  return {
    side: 'server',
    method: callMethod(scope.method),
    headers: new MetadataHeaders(scope.inbound, true),
    deadline: scope.deadline?.getTime(),
    signal: scope.signal,
    peer: scope.peer,
    inbound: undefined,
    attempt: 1,
    transport: new ScopeTransport(new MetadataHeaders(scope.forwardMetadata, true)),
  };
}

class ScopeTransport implements CallTransport {
  constructor(readonly forwardHeaders: Headers) {}
  readonly replayable = false;
  readonly peerAddress = undefined;
  retain(): void {}
  tap(): void {}
  peerCertificate(): undefined {
    return undefined;
  }
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
