export { H2Connection } from './connection.js';
export * from './constants.js';
export {
  CompressionError,
  HeaderBlock,
  HpackDecoder,
  type HpackDecoderOptions,
  HpackEncoder,
} from './hpack.js';
export type { ConnectionHandler, H2Options } from './options.js';
export type { H2Stream, StreamHandler, StreamState } from './stream.js';
