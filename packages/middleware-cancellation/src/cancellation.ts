import type { Call, Interceptor, Next, Outcome } from '@switchyard/core';

/**
 * Cancellation that crosses hops, once for every transport: a client call made for a server call
 * (a handler's call in an app, the upstream call in a proxy) is cancelled when that inbound call
 * ends early — cancelled by its own client, or past its deadline — and the transport then resets
 * it on the wire (RST_STREAM CANCEL). A call made outside any inbound call passes untouched.
 */
export const cancellationInterceptor: Interceptor = (call, next) =>
  followingInbound(call, next, call.inbound?.signal);

/**
 * Runs `call` with a signal that aborts when either its own signal or `inbound` (the inbound
 * call's) does; `inbound` undefined leaves the call as it is.
 */
export function followingInbound(
  call: Call,
  next: Next,
  inbound: AbortSignal | undefined,
): Promise<Outcome> {
  const own = call.signal;
  if (inbound === undefined || own === inbound) return next(call);
  // Nothing else cancels the call: the inbound call's signal is all it needs.
  if (own === undefined) return next({ ...call, signal: inbound });
  return linked(call, next, own, inbound);
}

async function linked(
  call: Call,
  next: Next,
  own: AbortSignal,
  inbound: AbortSignal,
): Promise<Outcome> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  if (own.aborted || inbound.aborted) {
    controller.abort();
  } else {
    own.addEventListener('abort', abort);
    inbound.addEventListener('abort', abort);
  }
  try {
    return await next({ ...call, signal: controller.signal });
  } finally {
    own.removeEventListener('abort', abort);
    inbound.removeEventListener('abort', abort);
  }
}
