export { DEFAULT_RETRYABLE_STATUSES, type RetryEvent, type RetryOptions } from './options.js';
export { NO_RETRY, parsePushback } from './pushback.js';
export { createRetryBudget, type RetryBudget, type RetryBudgetOptions } from './retry-budget.js';
export {
  createRetryMiddleware,
  type RetryMiddlewareOptions,
  retryMiddleware,
} from './retry-middleware.js';
