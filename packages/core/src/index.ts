export * from './backoff.js';
export * from './call-scope.js';
export * from './events.js';
export * from './framing.js';
export * from './grpc-timeout.js';
export * from './inbound-call.js';
export * from './rpc-conventions.js';
export * from './status.js';
