export {
  A66_LATENCY_BUCKETS,
  type CallKind,
  DEFAULT_DURATION_BUCKETS,
  type GrpcClientLevel,
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
