/**
 * RPC metrics as core interceptors, for any transport and without nice-grpc: the entry proxy-kit
 * imports, so that the proxy does not load the nice-grpc adapter it never runs (≈8 MB resident).
 */
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
  metricsServerInterceptor,
} from './middleware.js';
