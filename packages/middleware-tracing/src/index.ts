export * from './interceptors.js';
export { tracingClientMiddleware, tracingServerMiddleware } from './middleware.js';
