export * from './interceptors.js';
export {
  createRetryMiddleware,
  type RetryMiddlewareOptions,
  retryMiddleware,
} from './retry-middleware.js';
