export * from './call-scope.js';
export * from './grpc-error.js';
export * from './inbound-call.js';
export * from './served-status.js';
export * from './steps.js';
