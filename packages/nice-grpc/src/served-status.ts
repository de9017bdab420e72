import { isStatus, Status } from '@switchyard/core';
import { type CallContext, ServerError } from 'nice-grpc-common';
import { currentServedCall } from './call-scope.js';
import { currentInboundCall } from './inbound-call.js';

/**
 * The status a nice-grpc server sends for a call whose handler threw `error`, or for one that
 * returned (`error` undefined). Mirrors nice-grpc: a ServerError keeps its code, an abort is
 * CANCELLED, anything else (including a downstream call's ClientError) is UNKNOWN. When the call
 * was aborted, grpc-js has already sent the status: DEADLINE_EXCEEDED if the client's deadline
 * has passed (known through the call scope or `withInboundCall`),
 * else CANCELLED — whatever the handler did afterwards.
 */
export function servedStatus(context: CallContext, failed: boolean, error?: unknown): Status {
  if (context.signal.aborted)
    return deadlinePassed(context) ? Status.DEADLINE_EXCEEDED : Status.CANCELLED;
  if (!failed) return Status.OK;
  // The spec defines codes 0-16; telemetry reports any other as UNKNOWN (as statusName does),
  // which also keeps a status label's values bounded.
  if (error instanceof ServerError) return isStatus(error.code) ? error.code : Status.UNKNOWN;
  if (error instanceof Error && error.name === 'AbortError') return Status.CANCELLED;
  return Status.UNKNOWN;
}

function deadlinePassed(context: CallContext): boolean {
  const served = currentServedCall();
  const deadline =
    (served !== undefined && served.signal === context.signal ? served.deadline : undefined) ??
    currentInboundCall()?.deadline?.getTime();
  return deadline !== undefined && deadline <= Date.now();
}
