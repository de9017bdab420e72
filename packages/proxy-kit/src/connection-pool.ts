import type { Call, Outcome } from '@switchyard/core';
import { type Backoff, type BackoffOptions, exponentialBackoff } from '@switchyard/core';
import type { Endpoint } from '@switchyard/discovery';
import type { Logger } from 'pino';
import type { ProxyCall } from './proxy-call.js';
import type { Service } from './service.js';
import type { UpstreamCall } from './upstream-call.js';
import {
  type ConnectionEvents,
  UpstreamConnection,
  type UpstreamConnectionOptions,
} from './upstream-connection.js';

/** Options of {@link ConnectionPool}. */
export interface ConnectionPoolOptions extends UpstreamConnectionOptions {
  /**
   * Connections to one endpoint, opened one at a time when every open one is at the peer's
   * SETTINGS_MAX_CONCURRENT_STREAMS. Default 4.
   */
  maxConnections?: number;
  /** Delay between failed connection attempts. Default 100 ms doubling to 5 s, ±20 % jitter. */
  reconnectBackoff?: BackoffOptions;
  /**
   * Streams a connection carries before it is replaced: a new connection is opened, and once it
   * is ready the old one drains (its calls in flight finish) and closes. No call waits for the
   * replacement or fails because of it. 0 keeps connections for as long as they work.
   * Default 1,000 — see the README ("Connection recycling") for why.
   */
  maxStreamsPerConnection?: number;
}

/** What a pool needs from its surroundings. */
export interface PoolContext {
  logger: Logger;
  /** A connection attempt failed or a connection was lost: discovery may want to re-resolve. */
  connectionFailed(reason: string): void;
}

/**
 * The endpoint's terminal service: long-lived HTTP/2 connections to one upstream, each call
 * multiplexed onto one with a free stream. Ready while some connection has a free stream, so an
 * endpoint that is connecting, reconnecting after a failure, or at its peers' stream limit is
 * simply not ready. Lost connections are replaced at once; failed attempts back off.
 */
export class ConnectionPool implements Service, ConnectionEvents {
  readonly endpoint: Endpoint;
  readonly #options: UpstreamConnectionOptions;
  readonly #maxConnections: number;
  readonly #maxStreamsPerConnection: number;
  readonly #backoff: Backoff;
  readonly #context: PoolContext;
  readonly #connections: UpstreamConnection[] = [];
  readonly #listeners: (() => void)[] = [];
  #failedAttempts = 0;
  #lastFailure: string | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnectAt = 0;
  #closed = false;

  constructor(endpoint: Endpoint, options: ConnectionPoolOptions, context: PoolContext) {
    const {
      maxConnections = 4,
      reconnectBackoff = { baseMs: 100, maxMs: 5_000, jitter: 0.2 },
      maxStreamsPerConnection = 1_000,
      ...connection
    } = options;
    this.endpoint = endpoint;
    this.#options = connection;
    this.#maxConnections = maxConnections;
    this.#maxStreamsPerConnection = maxStreamsPerConnection;
    this.#backoff = exponentialBackoff(reconnectBackoff);
    this.#context = context;
    this.#connect();
  }

  isReady(): boolean {
    return this.#available() !== undefined;
  }

  /** HTTP/2 connections open or opening to the endpoint, for the admin API. */
  get connectionCount(): number {
    return this.#connections.length;
  }

  call(call: Call): Promise<Outcome> {
    const connection = this.#available()!;
    // Every call on the proxy's data plane is an attempt of one proxied call.
    const proxied = call.transport as ProxyCall;
    const ended = proxied.attempt(call, connection, (call as Partial<UpstreamCall>).onResponse);
    if (++connection.streamsOpened === this.#maxStreamsPerConnection) this.#retire(connection);
    if (!connection.hasCapacity()) {
      connection.full = true;
      this.#grow();
    }
    return ended;
  }

  onReady(listener: () => void): void {
    this.#listeners.push(listener);
  }

  notReadyReason(): string {
    if (this.#closed) return 'removed from discovery';
    const failure = this.#lastFailure ? ` (last attempt: ${this.#lastFailure})` : '';
    if (this.#reconnectTimer !== undefined) {
      const ms = Math.max(0, Math.round(this.#reconnectAt - performance.now()));
      return `reconnecting in ${ms} ms${failure}`;
    }
    const ready = this.#connections.filter((c) => c.state === 'ready');
    if (ready.length === 0) return `connecting${failure}`;
    return `all ${ready.length} connections at the upstream's limit of ${ready[0]!.capacity} concurrent streams`;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    await Promise.all(this.#connections.map((c) => c.close()));
  }

  // ConnectionEvents

  ready(connection: UpstreamConnection): void {
    this.#failedAttempts = 0;
    this.#lastFailure = undefined;
    this.#context.logger.debug(
      { endpoint: this.endpoint.address, maxConcurrentStreams: connection.capacity },
      'upstream connection ready',
    );
    // A replacement is up: the connections it replaces stop taking calls and drain.
    for (const old of [...this.#connections]) {
      if (old.retiring && old !== connection) void old.close();
    }
    this.#notify();
  }

  freed(): void {
    this.#notify();
  }

  draining(connection: UpstreamConnection): void {
    if (this.#closed) return;
    if (connection.retiring) {
      this.#context.logger.debug(
        { endpoint: this.endpoint.address, streams: connection.streamsOpened },
        'upstream connection recycled',
      );
    } else {
      this.#context.logger.info(
        { endpoint: this.endpoint.address, reason: connection.failure ?? 'GOAWAY' },
        'upstream connection draining',
      );
    }
    this.#ensureConnection();
  }

  closed(connection: UpstreamConnection): void {
    const index = this.#connections.indexOf(connection);
    if (index >= 0) this.#connections.splice(index, 1);
    if (this.#closed || connection.failure === undefined) {
      if (!this.#closed) this.#ensureConnection();
      return;
    }
    this.#lastFailure = connection.failure;
    if (!connection.established) this.#failedAttempts++;
    // The first failure is news; the retries that follow it are not, until one succeeds.
    const level = this.#failedAttempts <= 1 ? 'warn' : 'debug';
    this.#context.logger[level](
      {
        endpoint: this.endpoint.address,
        reason: connection.failure,
        attempt: this.#failedAttempts,
      },
      'upstream connection failed',
    );
    this.#context.connectionFailed(connection.failure);
    this.#ensureConnection();
  }

  /** A connection with a free stream; one being retired only while no other has one. */
  #available(): UpstreamConnection | undefined {
    const connections = this.#connections;
    let retiring: UpstreamConnection | undefined;
    for (let i = 0; i < connections.length; i++) {
      const connection = connections[i]!;
      if (!connection.hasCapacity()) continue;
      if (!connection.retiring) return connection;
      retiring ??= connection;
    }
    return retiring;
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  /**
   * Keeps one connection ready or connecting, waiting out the backoff after failures. One being
   * retired does not count: its replacement is retried until one is ready.
   */
  #ensureConnection(): void {
    if (this.#closed || this.#reconnectTimer !== undefined) return;
    if (
      this.#connections.some(
        (c) => !c.retiring && (c.state === 'connecting' || c.state === 'ready'),
      )
    )
      return;
    if (this.#failedAttempts === 0) {
      this.#connect();
      return;
    }
    const delay = this.#backoff(this.#failedAttempts - 1);
    this.#reconnectAt = performance.now() + delay;
    this.#context.logger.debug(
      { endpoint: this.endpoint.address, delayMs: Math.round(delay) },
      'reconnecting after backoff',
    );
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#connect();
    }, delay);
  }

  /**
   * `connection` has carried its share of streams: another ready connection with a free stream
   * takes over at once; otherwise it keeps serving until its replacement is ready.
   */
  #retire(connection: UpstreamConnection): void {
    connection.retiring = true;
    if (this.#connections.some((c) => !c.retiring && c.hasCapacity())) void connection.close();
    else this.#ensureConnection();
  }

  /** Opens one more connection when all usable ones are full. */
  #grow(): void {
    const usable = this.#connections.filter((c) => c.state === 'connecting' || c.state === 'ready');
    if (usable.length >= this.#maxConnections) return;
    if (usable.some((c) => c.state === 'connecting' || c.hasCapacity())) return;
    this.#connect();
  }

  #connect(): void {
    if (this.#closed) return;
    this.#connections.push(new UpstreamConnection(this.endpoint, this.#options, this));
  }
}
