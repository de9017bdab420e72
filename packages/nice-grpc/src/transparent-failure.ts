import { ClientError, type Metadata, Status } from 'nice-grpc-common';

/**
 * Whether a failed attempt provably never reached the server's application, so that any
 * method — idempotent or not — may be sent again (gRFC A6 "transparent retry").
 *
 * nice-grpc's `ClientError` carries only a code and a message, so the proof is read from what
 * grpc-js (1.x) reports when it, not the server, ended the call:
 *
 * - No trailers from the server. A status sent by a server, even Trailers-Only, arrives with
 *   its response headers (`content-type` at least); the statuses grpc-js makes up arrive with
 *   empty metadata. So a server's own UNAVAILABLE, which means it saw the call, never matches.
 * - `UNAVAILABLE` with one of the messages grpc-js uses for a call that was never processed:
 *   - `No connection established…` (`round_robin: No connection established…`): the load
 *     balancer had no connected backend (e.g. connection refused), so the call never left the
 *     process.
 *   - `Stream refused by server`: the stream was reset with `REFUSED_STREAM`, which RFC 9113
 *     §8.7 defines as "closed prior to any processing"; nghttp2 also closes the streams above a
 *     GOAWAY's last-stream-id this way, so "GOAWAY before processing" lands here too.
 *
 * Not transparent: `Connection dropped` and other resets (the handler may have been running —
 * nice-grpc servers send headers only with the first message, so "no headers yet" proves
 * nothing), deadline and cancellation codes, and every status with server trailers. Nor is
 * "no response headers": a server's Trailers-Only status fires no `onHeader` either.
 * Streams that could not even be created (grpc-js "NOT_STARTED") are retried by grpc-js itself
 * unless `grpc.enable_retries` is 0; they then surface as INTERNAL and are not retried here.
 */
export function isTransparentFailure(error: unknown, trailers: Metadata | undefined): boolean {
  if (!(error instanceof ClientError) || error.code !== Status.UNAVAILABLE) return false;
  if (trailers === undefined || trailers[Symbol.iterator]().next().done !== true) return false;
  return (
    error.details === 'Stream refused by server' ||
    error.details.includes('No connection established')
  );
}
