export {
  type CallKind,
  DEFAULT_DURATION_BUCKETS,
  type MetricNaming,
} from './instruments.js';
export {
  type ClientMetricsOptions,
  type MetricsOptions,
  metricsClientInterceptor,
  metricsClientMiddleware,
  metricsServerInterceptor,
  metricsServerMiddleware,
} from './middleware.js';
