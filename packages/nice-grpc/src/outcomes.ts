import {
  type CallMethod,
  callMethod,
  type Headers,
  isStatus,
  type Outcome,
  Status,
  StatusError,
} from '@switchyard/core';
import { ClientError, type Metadata, type MethodDescriptor, ServerError } from 'nice-grpc-common';
import { MetadataHeaders } from './metadata-headers.js';

// nice-grpc creates one descriptor per method of a server or client: the core view of each is
// made once.
const methods = new WeakMap<MethodDescriptor, CallMethod>();

/** Core's view of a nice-grpc method descriptor. */
export function methodOf(descriptor: MethodDescriptor): CallMethod {
  let method = methods.get(descriptor);
  if (method === undefined) {
    method = callMethod(descriptor.path, descriptor.requestStream, descriptor.responseStream);
    methods.set(descriptor, method);
  }
  return method;
}

/** The outcome of a call that returned `value` (a unary response, or a stream's end). */
export function okOutcome(value: unknown, trailers: Metadata | undefined): Outcome {
  return {
    status: Status.OK,
    message: '',
    trailers: headersOf(trailers),
    origin: 'server',
    committed: true,
    value,
  };
}

/** Whether `error` is the AbortError that abort-controller-x (and nice-grpc) throw on abort. */
export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/**
 * The outcome of a call that threw `error`: a gRPC status keeps its code (from the server when
 * trailers came with it, else from the transport), an abort is the caller's CANCELLED, anything
 * else UNKNOWN — as a nice-grpc client or server reports it.
 */
export function errorOutcome(
  error: unknown,
  trailers: Metadata | undefined,
  committed: boolean,
  unprocessed = false,
): Outcome {
  if (
    error instanceof ClientError ||
    error instanceof ServerError ||
    error instanceof StatusError
  ) {
    return {
      status: error.code as Status,
      message: error.details,
      trailers: headersOf(trailers),
      // grpc-js reports the statuses it makes up itself with empty trailers.
      origin: isEmpty(trailers) && error instanceof ClientError ? 'transport' : 'server',
      committed,
      unprocessed,
      error,
    };
  }
  if (isAbortError(error)) {
    const message = (error as Error).message || 'The operation was cancelled';
    return {
      status: Status.CANCELLED,
      message,
      trailers: undefined,
      origin: 'client',
      committed,
      error,
    };
  }
  // Not a status of the server's: a local failure (a middleware's bug), never worth retrying.
  return unknownOutcome(error, 'proxy', committed);
}

/** UNKNOWN for an error that carries no gRPC status, as gRPC reports an unexpected exception. */
function unknownOutcome(error: unknown, origin: Outcome['origin'], committed: boolean): Outcome {
  const message = error instanceof Error ? error.message : String(error);
  return { status: Status.UNKNOWN, message, trailers: undefined, origin, committed, error };
}

/**
 * The outcome of a handler that threw `error`, as a nice-grpc server reports it: a
 * `ServerError` keeps its code (one outside the spec is UNKNOWN), an abort is CANCELLED, and
 * anything else — a downstream call's `ClientError` included — is UNKNOWN.
 */
export function handlerErrorOutcome(error: unknown, committed: boolean): Outcome {
  if (error instanceof ServerError) {
    const status = isStatus(error.code) ? error.code : Status.UNKNOWN;
    return {
      status,
      message: error.details,
      trailers: undefined,
      origin: 'server',
      committed,
      error,
    };
  }
  if (isAbortError(error)) return errorOutcome(error, undefined, committed);
  return unknownOutcome(error, 'server', committed);
}

/**
 * What a nice-grpc client throws for a failed outcome: the very error the call raised when the
 * layers passed it on unchanged, else a `ClientError` with the status they decided.
 */
export function clientErrorOf(path: string, outcome: Outcome): unknown {
  const { error } = outcome;
  if (error instanceof ClientError && error.code === outcome.status) return error;
  if (isAbortError(error) && outcome.status === Status.CANCELLED) return error;
  return new ClientError(path, outcome.status, outcome.message);
}

/** What a nice-grpc server handler's middleware throws for a failed outcome, likewise. */
export function serverErrorOf(outcome: Outcome): unknown {
  const { error } = outcome;
  // A code outside the spec is reported as UNKNOWN; the handler's own error still goes out.
  if (
    error instanceof ServerError &&
    (error.code === outcome.status || (!isStatus(error.code) && outcome.status === Status.UNKNOWN))
  )
    return error;
  if (error !== undefined && !(error instanceof ServerError) && outcome.status === Status.UNKNOWN)
    return error;
  if (isAbortError(error) && outcome.status === Status.CANCELLED) return error;
  return new ServerError(outcome.status, outcome.message);
}

function headersOf(metadata: Metadata | undefined): Headers | undefined {
  return metadata === undefined ? undefined : new MetadataHeaders(metadata);
}

function isEmpty(metadata: Metadata | undefined): boolean {
  return metadata === undefined || metadata[Symbol.iterator]().next().done === true;
}
