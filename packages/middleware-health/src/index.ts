export {
  HealthCheckRequest,
  HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  type HealthClient,
  HealthDefinition,
  HealthListRequest,
  HealthListResponse,
  type HealthServiceImplementation,
} from './gen/nice/grpc/health/v1/health.js';
export * from './graceful-shutdown.js';
export * from './health-client.js';
export * from './health-service.js';
export * from './health-state.js';
export * from './serving-state.js';
