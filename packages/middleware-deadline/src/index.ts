export {
  type DeadlineClientOptions,
  type DeadlineOptions,
  deadlineClientMiddleware,
  deadlineMiddleware,
} from './client.js';
export * from './interceptors.js';
export { type DeadlineCallContextExt, deadlineServerMiddleware } from './server.js';
