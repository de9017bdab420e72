export * from './call-scope.js';
export * from './framing.js';
export * from './grpc-timeout.js';
export * from './status.js';
