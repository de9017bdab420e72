import { AsyncLocalStorage } from 'node:async_hooks';
import type { ServerInterceptingCallInterface } from '@grpc/grpc-js';
import type { CallScope } from './call-scope.js';

/**
 * What core keeps for the inbound call being served, in one AsyncLocalStorage shared by the
 * inbound-call interceptor and the call scope.
 *
 * One storage, entered once per call, because every `run` costs a context switch (on Node 22+
 * a new AsyncContextFrame, a copy of the frame's map): the interceptor enters it around the grpc-js callback that starts the handler, so the whole
 * handler — nice-grpc's middleware chain included — already runs inside it, and server
 * middleware only fills in `scope` instead of entering a storage and wrapping the call's
 * generator. Not exported from the package: reached through `currentCallScope` and
 * `currentInboundCall`.
 */
export interface CallState {
  /** The grpc-js call, when the inbound-call interceptor entered this state. */
  readonly call: ServerInterceptingCallInterface | undefined;
  /** Its method path, `/package.Service/Method`; `undefined` with {@link call}. */
  readonly path: string | undefined;
  /** The call scope, once a server middleware has established it. */
  scope: CallScope | undefined;
}

export const callState = new AsyncLocalStorage<CallState>();
