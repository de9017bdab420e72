export * from './config.js';
export {
  type Discovery,
  DiscoveryError,
  type DiscoveryReportingOptions,
  type DiscoveryUpdate,
} from './discovery.js';
export * from './dns.js';
export {
  canonicalEndpoints,
  type Endpoint,
  type EndpointEntry,
  endpoint,
  parseEndpoint,
  parseEndpointEntry,
} from './endpoint.js';
export * from './file.js';
export * from './kubernetes.js';
export { durationSchema, endpointsDocumentSchema, issuePath } from './schema.js';
export * from './static.js';
