export {
  DEFAULT_RETRYABLE_STATUSES,
  type RetryEvent,
  type RetryOptions,
  type RetryPolicy,
} from './options.js';
export { NO_RETRY, parsePushback } from './pushback.js';
export {
  DEFAULT_MIN_ATTEMPT_TIME_MS,
  DEFAULT_RETRY_BUFFER_LIMIT_BYTES,
  type RetryDefaults,
  retriedCall,
} from './retry.js';
export { createRetryBudget, type RetryBudget, type RetryBudgetOptions } from './retry-budget.js';
export {
  createRetryMiddleware,
  type RetryMiddlewareOptions,
  retryMiddleware,
} from './retry-middleware.js';
