/**
 * Cancellation that follows the inbound call as core interceptors, for any transport and without nice-grpc: the entry proxy-kit
 * imports, so that the proxy does not load the nice-grpc adapter it never runs (≈8 MB resident).
 */
export { cancellationInterceptor, followingInbound } from './cancellation.js';
