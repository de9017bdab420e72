import { Status } from '@switchyard/core';

// RFC 9113 §7 error codes, indexed by value.
const RESET_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
] as const;

/** `8` → `'CANCEL'`; unknown codes keep their number. */
export function resetCodeName(code: number): string {
  return RESET_NAMES[code] ?? `error code ${code}`;
}

/**
 * The gRPC status a client reports when the server resets the stream (PROTOCOL-HTTP2, "Errors"):
 * REFUSED_STREAM means the call was not processed and is safe to retry, CANCEL is a cancellation,
 * ENHANCE_YOUR_CALM is the peer shedding load, INADEQUATE_SECURITY a transport-security refusal;
 * everything else is an INTERNAL fault.
 */
export function statusFromResetCode(code: number): Status {
  switch (code) {
    case 7:
      return Status.UNAVAILABLE;
    case 8:
      return Status.CANCELLED;
    case 11:
      return Status.RESOURCE_EXHAUSTED;
    case 12:
      return Status.PERMISSION_DENIED;
    default:
      return Status.INTERNAL;
  }
}
