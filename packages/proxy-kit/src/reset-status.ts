import { Status } from '@switchyard/core';
import { CANCEL, ENHANCE_YOUR_CALM, INADEQUATE_SECURITY, REFUSED_STREAM } from '@switchyard/h2';

/**
 * The gRPC status a client reports when the server resets the stream (PROTOCOL-HTTP2, "Errors"):
 * REFUSED_STREAM means the call was not processed and is safe to retry, CANCEL is a cancellation,
 * ENHANCE_YOUR_CALM is the peer shedding load, INADEQUATE_SECURITY a transport-security refusal;
 * everything else is an INTERNAL fault.
 */
export function statusFromResetCode(code: number): Status {
  switch (code) {
    case REFUSED_STREAM:
      return Status.UNAVAILABLE;
    case CANCEL:
      return Status.CANCELLED;
    case ENHANCE_YOUR_CALM:
      return Status.RESOURCE_EXHAUSTED;
    case INADEQUATE_SECURITY:
      return Status.PERMISSION_DENIED;
    default:
      return Status.INTERNAL;
  }
}
