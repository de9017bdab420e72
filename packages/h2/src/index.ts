export * from './connection.js';
export * from './frames.js';
export * from './hpack.js';
export * from './stream.js';
