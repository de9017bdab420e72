export {
  type CallKind,
  DEFAULT_DURATION_BUCKETS,
  type MetricNaming,
} from './instruments.js';
export {
  type ClientMetricsOptions,
  type MetricsOptions,
  metricsClientMiddleware,
  metricsServerMiddleware,
} from './middleware.js';
