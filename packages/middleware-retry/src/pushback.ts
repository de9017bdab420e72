/** A server's `grpc-retry-pushback-ms` telling the client not to retry. */
export const NO_RETRY = -1;

/**
 * Reads `grpc-retry-pushback-ms` from an attempt's trailers (gRFC A6 "Pushback"): a
 * non-negative decimal integer is the delay before the next attempt; any other value
 * (negative, empty, not a number) means "do not retry" and returns {@link NO_RETRY};
 * `undefined` when the server sent none.
 *
 * grpc-js parses the value with `parseInt`, so that `"abc"` becomes a 1 ms delay; A6 says
 * malformed values stop retries, which is what grpc-go and grpc-java do and what this follows.
 */
export function parsePushback(
  // core's Headers, or nice-grpc's Metadata
  trailers: { get(name: string): unknown } | undefined,
): number | undefined {
  const value = trailers?.get('grpc-retry-pushback-ms');
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value)) return NO_RETRY;
  return Number(value);
}
