/**
 * Server and client spans as core interceptors, for any transport and without nice-grpc: the entry proxy-kit
 * imports, so that the proxy does not load the nice-grpc adapter it never runs (≈8 MB resident).
 */
export { headersGetter, headersSetter, type TracingOptions } from './spans.js';
export {
  type ClientTracingOptions,
  type TracingInterceptor,
  tracingClientInterceptor,
  tracingServerInterceptor,
} from './tracing.js';
