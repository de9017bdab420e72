export {
  type DeadlineClientOptions,
  type DeadlineOptions,
  deadlineClientMiddleware,
  deadlineMiddleware,
} from './client.js';
export {
  DEFAULT_PROPAGATION_OFFSET,
  type DeadlinePolicy,
  deadlineInterceptor,
  type ResolvedDeadlinePolicy,
  resolveDeadlinePolicy,
  withDeadline,
} from './deadline.js';
export { type DeadlineCallContextExt, deadlineServerMiddleware } from './server.js';
