export * from './interceptors.js';
export { metricsClientMiddleware, metricsServerMiddleware } from './nice-grpc.js';
