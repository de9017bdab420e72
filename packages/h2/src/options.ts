import type { HeaderBlock } from './hpack.js';
import type { H2Stream } from './stream.js';

/**
 * Our side's settings, windows and limits. Every limit has a default that no well-behaved peer
 * reaches; a peer that crosses one is sent GOAWAY(ENHANCE_YOUR_CALM) and the connection closes.
 * Rates are counted per connection over one-second windows.
 */
export interface H2Options {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we allow the peer to open. Default 1000. */
  maxConcurrentStreams?: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE: what each stream may send us before we grant more. Default 1 MiB. */
  streamWindow?: number;
  /** Receive window of the whole connection. Default 16 MiB. */
  connectionWindow?: number;
  /**
   * Received DATA a connection may hold that its streams' owners have not yet handed on
   * ({@link H2Stream.consume}). Below it the connection window is given back as DATA arrives, so
   * a stream whose reader stalls holds only its own window and does not stall the others; beyond
   * it, only as owners hand bytes on — what one connection buffers stays bounded. Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: larger received blocks are marked `oversize`. Default 64 KiB. */
  maxHeaderListSize?: number;

  /** Compressed size of one header block (HEADERS + CONTINUATION). Default 4 × maxHeaderListSize. */
  maxHeaderBlockBytes?: number;
  /** CONTINUATION frames in one header block, empty ones included (CVE-2024-27316). Default 16. */
  maxContinuationFrames?: number;
  /** A header block begun must end (END_HEADERS) within this long. Default 5 s. */
  headerBlockTimeoutMs?: number;
  /** PINGs (not ACKs) the peer may send per second. Default 1000. */
  maxPingsPerSecond?: number;
  /** SETTINGS frames (not ACKs) the peer may send per second. Default 100. */
  maxSettingsPerSecond?: number;
  /**
   * Frames that carry nothing the peer may send per second: DATA without payload or END_STREAM,
   * WINDOW_UPDATE of 0, PRIORITY, and frames of unknown types. Default 1000.
   */
  maxEmptyFramesPerSecond?: number;
  /**
   * Server role: stream resets per second, whoever sends them — the peer's RST_STREAM and ours
   * for the peer's stream errors, refused streams included ("rapid reset", CVE-2023-44487).
   * Default 1000.
   */
  maxResetsPerSecond?: number;
  /**
   * Bytes waiting to be written to the socket. Beyond it no DATA is written and the peer's input
   * is not read until the socket drains (a peer that does not read what we send gets no more
   * ACKs); beyond 8 times it the connection is closed. Default 1 MiB.
   */
  maxQueuedOutputBytes?: number;
  /** The peer must send its preface and SETTINGS within this long. Default 10 s; 0: no limit. */
  handshakeTimeoutMs?: number;
  /** The peer must acknowledge our SETTINGS within this long (§6.5.3). Default 10 s; 0: no limit. */
  settingsTimeoutMs?: number;
  /**
   * A connection without streams for this long is closed gracefully (GOAWAY NO_ERROR).
   * Default 5 min for the server role, none for the client role; 0: never.
   */
  idleTimeoutMs?: number;
}

/** What the owner of a connection is told. */
export interface ConnectionHandler {
  /** Server role: the peer opened a stream. Set `stream.handler` before returning. */
  onStream?(stream: H2Stream, headers: HeaderBlock, endStream: boolean): void;
  /** The peer's first SETTINGS arrived: the connection is usable. */
  onReady(): void;
  /** The peer sent GOAWAY: no new streams; those up to `lastStreamId` may finish. */
  onGoaway(code: number, lastStreamId: number): void;
  /** A stream we opened closed, or the peer raised its stream limit: there may be room now. */
  onCapacity(): void;
  /** The connection is gone; `error` says why if it failed. */
  onClose(error: string | undefined): void;
}

/** {@link H2Options} with every default in place. */
export interface Limits {
  maxConcurrentStreams: number;
  streamWindow: number;
  connectionWindow: number;
  maxBufferedBytes: number;
  maxHeaderListSize: number;
  maxHeaderBlockBytes: number;
  maxContinuationFrames: number;
  headerBlockTimeoutMs: number;
  maxPingsPerSecond: number;
  maxSettingsPerSecond: number;
  maxEmptyFramesPerSecond: number;
  maxResetsPerSecond: number;
  maxQueuedOutputBytes: number;
  handshakeTimeoutMs: number;
  settingsTimeoutMs: number;
  idleTimeoutMs: number;
}

export function resolveOptions(options: H2Options, role: 'client' | 'server'): Limits {
  const {
    maxConcurrentStreams = 1000,
    streamWindow = 1 << 20,
    connectionWindow = 16 << 20,
    maxBufferedBytes = 64 << 20,
    maxHeaderListSize = 64 << 10,
    maxHeaderBlockBytes = 4 * maxHeaderListSize,
    maxContinuationFrames = 16,
    headerBlockTimeoutMs = 5_000,
    maxPingsPerSecond = 1000,
    maxSettingsPerSecond = 100,
    maxEmptyFramesPerSecond = 1000,
    maxResetsPerSecond = 1000,
    maxQueuedOutputBytes = 1 << 20,
    handshakeTimeoutMs = 10_000,
    settingsTimeoutMs = 10_000,
    idleTimeoutMs = role === 'server' ? 300_000 : 0,
  } = options;
  return {
    maxConcurrentStreams,
    streamWindow,
    connectionWindow,
    maxBufferedBytes,
    maxHeaderListSize,
    maxHeaderBlockBytes,
    maxContinuationFrames,
    headerBlockTimeoutMs,
    maxPingsPerSecond,
    maxSettingsPerSecond,
    maxEmptyFramesPerSecond,
    maxResetsPerSecond,
    // Below the socket's own high-water mark a full queue would never be reported as drained.
    maxQueuedOutputBytes: Math.max(maxQueuedOutputBytes, 64 << 10),
    handshakeTimeoutMs,
    settingsTimeoutMs,
    idleTimeoutMs,
  };
}
