export { tracingClientMiddleware, tracingServerMiddleware } from './middleware.js';
export { headersGetter, headersSetter, type TracingOptions } from './spans.js';
export {
  type ClientTracingOptions,
  type TracingInterceptor,
  tracingClientInterceptor,
  tracingServerInterceptor,
} from './tracing.js';
