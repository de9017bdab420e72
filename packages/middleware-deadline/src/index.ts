export {
  DEFAULT_PROPAGATION_OFFSET,
  type DeadlineClientOptions,
  type DeadlineOptions,
  deadlineClientMiddleware,
  deadlineMiddleware,
} from './client.js';
export { type DeadlineCallContextExt, deadlineServerMiddleware } from './server.js';
