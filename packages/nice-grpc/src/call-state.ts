import { AsyncLocalStorage } from 'node:async_hooks';
import type { ServerInterceptingCallInterface } from '@grpc/grpc-js';
import type { Call } from '@switchyard/core';

/**
 * What the adapter keeps for the inbound call being served, in one AsyncLocalStorage shared by
 * the inbound-call interceptor and the server layers.
 *
 * One storage, entered once per call, because every `run` costs a context switch (on Node 24 a
 * new AsyncContextFrame; on Node 22 also async hooks for every promise): the interceptor enters
 * it around the grpc-js callback that starts the handler, so the whole handler — nice-grpc's
 * middleware chain included — already runs inside it, and server layers only record the call
 * they pass on instead of entering a storage and wrapping the call's generator. Not exported
 * from the package: reached through `currentServedCall`, `currentCallScope` and
 * `currentInboundCall`.
 */
export interface CallState {
  /** The grpc-js call, when the inbound-call interceptor entered this state. */
  readonly call: ServerInterceptingCallInterface | undefined;
  /** Its method path, `/package.Service/Method`; `undefined` with {@link call}. */
  readonly path: string | undefined;
  /**
   * Core's view of the call being served, as the innermost Switchyard server layer passed it on
   * (with the deadline, caller and forwarded headers the layers established); `undefined` until
   * one has run.
   */
  served: Call | undefined;
}

export const callState = new AsyncLocalStorage<CallState>();
