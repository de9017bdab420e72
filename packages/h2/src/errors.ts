/**
 * A connection error (RFC 9113 §5.4.1): the connection ends with GOAWAY(`code`). Thrown while a
 * frame is handled and caught where input enters the connection.
 */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
