export * from './balancer.js';
export * from './load.js';
export * from './outlier-ejection.js';
export * from './peak-ewma.js';
