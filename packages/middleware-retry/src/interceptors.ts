/**
 * Retries, budgets and hedging as core interceptors, for any transport and without nice-grpc: the entry proxy-kit
 * imports, so that the proxy does not load the nice-grpc adapter it never runs (≈8 MB resident).
 */
export {
  DEFAULT_RETRYABLE_STATUSES,
  NICE_GRPC_RETRY_DEFAULTS,
  type RetryEvent,
  type RetryOptions,
  type RetryPolicy,
  type RetryPolicyDefaults,
  SWITCHYARD_RETRY_DEFAULTS,
} from './options.js';
export { NO_RETRY, parsePushback } from './pushback.js';
export {
  DEFAULT_MIN_ATTEMPT_TIME_MS,
  DEFAULT_RETRY_BUFFER_LIMIT_BYTES,
  type RetryDefaults,
  retriedCall,
} from './retry.js';
export {
  createRetryBudget,
  type RetryBudget,
  type RetryBudgetOptions,
  UNBOUNDED_RETRY_BUDGET,
} from './retry-budget.js';
