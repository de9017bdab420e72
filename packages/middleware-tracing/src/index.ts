export {
  type ClientTracingOptions,
  tracingClientMiddleware,
  tracingServerMiddleware,
} from './middleware.js';
export { metadataGetter, metadataSetter, type TracingOptions } from './spans.js';
