import { Status, StatusError, type StatusName, statusName } from '@switchyard/core';
import { ClientError, Metadata, ServerError } from 'nice-grpc-common';

/**
 * A gRPC failure with its code, message and trailers.
 *
 * It extends nice-grpc's `ServerError`, so a handler may throw it and the client sees the same
 * code and message; {@link GrpcError.from} turns anything a call can throw (`ClientError`,
 * `ServerError`, an abort, a core `StatusError`, a plain error) into one, so middleware classifies failures in one
 * place.
 */
export class GrpcError extends ServerError {
  /** Trailers sent with (or received with) the status; empty when there were none. */
  readonly trailers: Metadata;

  constructor(code: Status, details: string, trailers: Metadata = Metadata()) {
    super(code, details);
    this.name = 'GrpcError';
    this.trailers = trailers;
  }

  /** The spec's name of {@link code}, for messages and metric labels. */
  get codeName(): StatusName {
    return statusName(this.code);
  }

  /**
   * Normalises a thrown value: gRPC errors keep their code and details, aborts become
   * CANCELLED, anything else UNKNOWN (as a gRPC server reports an unexpected exception).
   */
  static from(error: unknown, trailers?: Metadata): GrpcError {
    if (error instanceof GrpcError) return error;
    if (
      error instanceof ServerError ||
      error instanceof ClientError ||
      error instanceof StatusError
    ) {
      return new GrpcError(error.code, error.details, trailers);
    }
    if (error instanceof Error && error.name === 'AbortError') {
      return new GrpcError(
        Status.CANCELLED,
        error.message || 'The operation was cancelled',
        trailers,
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    return new GrpcError(Status.UNKNOWN, message, trailers);
  }

  /** The same failure as nice-grpc's client sees it, for code that matches on `ClientError`. */
  toClientError(path: string): ClientError {
    return new ClientError(path, this.code, this.details);
  }
}
