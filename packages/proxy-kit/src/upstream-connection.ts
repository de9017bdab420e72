import { connect as connectTcp, isIP, type Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Endpoint } from '@switchyard/discovery';
import { type ConnectionHandler, H2Connection } from '@switchyard/h2';

/** How the proxy talks to upstreams. */
export interface UpstreamConnectionOptions {
  /** TLS to upstreams (ALPN `h2`); plaintext h2c when absent. */
  tls?: ConnectionOptions;
  /** A connection must deliver the peer's SETTINGS within this long. Default 3 s. */
  connectTimeoutMs?: number;
  /** HTTP/2 PING interval. Default 10 s. */
  keepaliveIntervalMs?: number;
  /** A PING unanswered this long means the upstream hangs: the connection is dropped. Default 5 s. */
  keepaliveTimeoutMs?: number;
  /** Initial per-stream receive window. Default 1 MiB. */
  streamWindowBytes?: number;
  /** Per-connection receive window. Default 16 MiB. */
  connectionWindowBytes?: number;
  /** Largest header block we accept (SETTINGS_MAX_HEADER_LIST_SIZE). Default 64 KiB. */
  maxHeaderListBytes?: number;
}

/** Why a connection changed state, for the pool that owns it. */
export interface ConnectionEvents {
  /** SETTINGS arrived: the connection can take streams. */
  ready(connection: UpstreamConnection): void;
  /** GOAWAY received or close started: no new streams; the pool should open a replacement. */
  draining(connection: UpstreamConnection): void;
  /** The connection is gone (`failure` says why, if it failed). */
  closed(connection: UpstreamConnection): void;
  /** A stream ended on a connection that had been at its stream limit. */
  freed(connection: UpstreamConnection): void;
}

type State = 'connecting' | 'ready' | 'draining' | 'closed';

/**
 * One HTTP/2 connection to an upstream: connects (TCP or TLS with ALPN h2), proves the peer
 * alive with PINGs, honours its SETTINGS_MAX_CONCURRENT_STREAMS and GOAWAY, and reports each
 * change to its pool.
 */
export class UpstreamConnection implements ConnectionHandler {
  readonly endpoint: Endpoint;
  readonly h2: H2Connection;
  state: State = 'connecting';
  /** The peer's SETTINGS arrived at some point: the connection worked before it failed. */
  established = false;
  /** Why the connection failed, when it did; used in status messages and logs. */
  failure: string | undefined = undefined;
  /** The last call placed found the connection at its stream limit. */
  full = false;
  /** Streams opened on it so far. */
  streamsOpened = 0;
  /**
   * It has carried its share of streams (see `maxStreamsPerConnection`): it still takes calls
   * until a replacement is ready, then drains.
   */
  retiring = false;
  readonly #events: ConnectionEvents;
  readonly #keepaliveIntervalMs: number;
  readonly #keepaliveTimeoutMs: number;
  #connectTimer: NodeJS.Timeout | undefined;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #closed: (() => void) | undefined;
  readonly #closedPromise: Promise<void>;

  constructor(endpoint: Endpoint, options: UpstreamConnectionOptions, events: ConnectionEvents) {
    this.endpoint = endpoint;
    this.#events = events;
    this.#keepaliveIntervalMs = options.keepaliveIntervalMs ?? 10_000;
    this.#keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? 5_000;
    this.#closedPromise = new Promise((resolve) => {
      this.#closed = resolve;
    });
    const { host, port } = endpoint;
    let socket: Socket;
    if (options.tls) {
      // node:tls initialises OpenSSL (≈8 MB resident): loaded only for TLS upstreams.
      const { connect: connectTls } = process.getBuiltinModule('node:tls');
      const tlsSocket = connectTls({
        // SNI carries host names only (RFC 6066); an IP is checked against the IP SANs.
        servername: isIP(host) === 0 ? host : undefined,
        ...options.tls,
        host,
        port,
        ALPNProtocols: ['h2'],
      });
      tlsSocket.once('secureConnect', () => {
        if (tlsSocket.alpnProtocol !== 'h2') {
          this.h2.destroy(`${endpoint.address} did not negotiate HTTP/2 (ALPN h2)`);
        }
      });
      socket = tlsSocket;
    } else {
      socket = connectTcp({ host, port, noDelay: true });
    }
    socket.setNoDelay(true);
    this.h2 = new H2Connection(socket, 'client', this, {
      streamWindow: options.streamWindowBytes,
      connectionWindow: options.connectionWindowBytes,
      maxHeaderListSize: options.maxHeaderListBytes,
    });
    const connectTimeoutMs = options.connectTimeoutMs ?? 3_000;
    this.#connectTimer = setTimeout(() => {
      this.h2.destroy(`no HTTP/2 SETTINGS from ${endpoint.address} within ${connectTimeoutMs} ms`);
    }, connectTimeoutMs);
  }

  /** Whether a new stream may be opened now. */
  hasCapacity(): boolean {
    return this.state === 'ready' && this.h2.hasCapacity();
  }

  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS. */
  get capacity(): number {
    return this.h2.peerMaxStreams;
  }

  /** Stops new streams; resolves when the ones in flight have finished and the connection closed. */
  close(): Promise<void> {
    if (this.state === 'connecting') {
      // Nothing in flight to wait for, and a peer that never answered may never close either.
      this.h2.destroy('closed while connecting');
    } else if (this.state !== 'closed') {
      this.#drain();
      this.h2.close();
    }
    return this.#closedPromise;
  }

  // ConnectionHandler

  onReady(): void {
    if (this.state !== 'connecting') return;
    clearTimeout(this.#connectTimer);
    this.state = 'ready';
    this.established = true;
    this.#scheduleKeepalive();
    this.#events.ready(this);
  }

  onGoaway(code: number): void {
    if (code !== 0) this.failure ??= this.h2.failure;
    this.#drain();
  }

  onCapacity(): void {
    if (this.full && this.hasCapacity()) {
      this.full = false;
      this.#events.freed(this);
    }
  }

  onClose(error: string | undefined): void {
    const wasConnecting = this.state === 'connecting';
    this.state = 'closed';
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#keepaliveTimer);
    clearTimeout(this.#pingTimer);
    this.failure ??=
      error ?? (wasConnecting ? `connection to ${this.endpoint.address} closed` : undefined);
    this.#events.closed(this);
    this.#closed?.();
  }

  #scheduleKeepalive(): void {
    this.#keepaliveTimer = setTimeout(() => this.#ping(), this.#keepaliveIntervalMs);
    this.#keepaliveTimer.unref();
  }

  #ping(): void {
    if (this.state === 'closed') return;
    this.#pingTimer = setTimeout(() => {
      this.h2.destroy(
        `${this.endpoint.address} did not answer a keepalive PING within ${this.#keepaliveTimeoutMs} ms`,
      );
    }, this.#keepaliveTimeoutMs);
    this.#pingTimer.unref();
    this.h2.ping((error) => {
      clearTimeout(this.#pingTimer);
      if (error === undefined && this.state !== 'closed') this.#scheduleKeepalive();
    });
  }

  #drain(): void {
    if (this.state === 'draining' || this.state === 'closed') return;
    this.state = 'draining';
    clearTimeout(this.#connectTimer);
    this.#events.draining(this);
  }
}
