/** HTTP/2 wire constants: frame types, flags, error codes and settings (RFC 9113 §6, §7, §11). */

/** Every frame starts with a 9-octet header (§4.1). */
export const FRAME_HEADER_SIZE = 9;

// Frame types (§6).
export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

// Flags (§6). END_STREAM and ACK share a bit: which one it is depends on the frame type.
export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

// Settings identifiers (§6.5.2).
export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

// Error codes (§7), carried by RST_STREAM and GOAWAY.
export const NO_ERROR = 0x0;
export const PROTOCOL_ERROR = 0x1;
export const INTERNAL_ERROR = 0x2;
export const FLOW_CONTROL_ERROR = 0x3;
export const SETTINGS_TIMEOUT = 0x4;
export const STREAM_CLOSED = 0x5;
export const FRAME_SIZE_ERROR = 0x6;
export const REFUSED_STREAM = 0x7;
export const CANCEL = 0x8;
export const COMPRESSION_ERROR = 0x9;
export const CONNECT_ERROR = 0xa;
export const ENHANCE_YOUR_CALM = 0xb;
export const INADEQUATE_SECURITY = 0xc;
export const HTTP_1_1_REQUIRED = 0xd;

const ERROR_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
] as const;

/** `8` → `'CANCEL'`; codes this version does not know keep their number (§7: not an error). */
export function errorCodeName(code: number): string {
  return ERROR_NAMES[code] ?? `error code ${code}`;
}

/** The client connection preface (§3.4). */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Largest flow-control window, and largest stream id (§6.9.1, §5.1.1). */
export const MAX_WINDOW = 2 ** 31 - 1;
/** Window of every stream and of the connection before SETTINGS say otherwise (§6.9.2). */
export const DEFAULT_WINDOW = 65_535;
/** SETTINGS_MAX_FRAME_SIZE before SETTINGS, and its lowest allowed value (§6.5.2). */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
/** Highest allowed SETTINGS_MAX_FRAME_SIZE (§6.5.2). */
export const MAX_FRAME_SIZE_LIMIT = 16_777_215;
