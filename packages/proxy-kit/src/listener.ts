import {
  type AddressInfo,
  createServer as createTcpServer,
  type Server,
  type Socket,
} from 'node:net';
import type { TLSSocket, TlsOptions } from 'node:tls';
import { H2Connection, type H2Options } from '@switchyard/h2';
import type { Logger } from 'pino';
import { type InboundConnection, ProxyCall } from './proxy-call.js';
import type { Service } from './service.js';

const serve = (call: ProxyCall, service: Service) => call.serve(service);

/** Options of the inbound side. */
export interface ListenerOptions {
  /** `host:port` to listen on; port 0 picks a free one. */
  address: string;
  /** TLS (ALPN `h2` only); plaintext h2c when absent. `ca` + `requestCert` ask for client certs. */
  tls?: Pick<TlsOptions, 'cert' | 'key' | 'ca' | 'requestCert'>;
  /** Initial per-stream receive window. Default 1 MiB. */
  streamWindowBytes?: number;
  /** Per-connection receive window. Default 16 MiB. */
  connectionWindowBytes?: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS we announce to each client. Default 1000. */
  maxConcurrentStreams?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE we announce and enforce. Default 64 KiB. */
  maxHeaderListBytes?: number;
  /** A client must send the HTTP/2 preface and SETTINGS within this long. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** A client connection without calls for this long is closed (GOAWAY). Default 5 min. */
  idleTimeoutMs?: number;
  /** Client connections at once; more are refused at accept. Default 10,000. */
  maxConnections?: number;
  /**
   * The HTTP/2 flood limits of every client connection (`@switchyard/h2`'s options: CONTINUATION
   * frames per header block, PING/SETTINGS/empty-frame/reset rates, queued output…); each ends a
   * connection that crosses it with GOAWAY ENHANCE_YOUR_CALM. Defaults: the package's.
   */
  limits?: Pick<
    H2Options,
    | 'maxHeaderBlockBytes'
    | 'maxContinuationFrames'
    | 'headerBlockTimeoutMs'
    | 'maxPingsPerSecond'
    | 'maxSettingsPerSecond'
    | 'maxEmptyFramesPerSecond'
    | 'maxResetsPerSecond'
    | 'maxQueuedOutputBytes'
    | 'settingsTimeoutMs'
  >;
}

/**
 * The proxy's inbound side: accepts TCP (h2c) or TLS (ALPN h2) connections and turns every
 * stream into a {@link ProxyCall} handed to the pipeline. Tracks connections so that shutdown can
 * send GOAWAY and wait for calls in flight.
 */
export class ProxyListener {
  readonly #server: Server;
  readonly #options: ListenerOptions;
  readonly #connections = new Set<H2Connection>();
  #service: Service;

  constructor(service: Service, options: ListenerOptions, logger: Logger) {
    this.#options = options;
    this.#service = service;
    const h2Options: H2Options = {
      maxConcurrentStreams: options.maxConcurrentStreams,
      streamWindow: options.streamWindowBytes,
      connectionWindow: options.connectionWindowBytes,
      maxHeaderListSize: options.maxHeaderListBytes,
      // A client that connects and never completes the HTTP/2 preface and SETTINGS must not
      // hold a connection for ever.
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs,
      ...options.limits,
    };
    const connections = this.#connections;
    const accept = (socket: Socket) => {
      const inbound = inboundConnection(socket);
      const connection: H2Connection = new H2Connection(
        socket,
        'server',
        {
          onStream: (stream, headers, endStream) => {
            // Served once the rest of the bytes read with it are parsed: a stream the client
            // resets in the same read ("rapid reset", CVE-2023-44487) costs no upstream work.
            process.nextTick(
              serve,
              new ProxyCall(stream, headers, endStream, inbound),
              this.#service,
            );
          },
          onReady: () => {},
          onGoaway: () => {},
          onCapacity: () => {},
          onClose: (error) => {
            connections.delete(connection);
            if (error !== undefined) logger.debug({ reason: error }, 'client connection failed');
          },
        },
        h2Options,
      );
      connections.add(connection);
    };
    if (options.tls) {
      // node:tls initialises OpenSSL (≈8 MB resident): loaded only by a listener that uses it.
      const { createServer: createTlsServer } = process.getBuiltinModule('node:tls');
      const server = createTlsServer({ ...options.tls, ALPNProtocols: ['h2'] });
      server.on('secureConnection', (socket: TLSSocket) => {
        // gRPC needs HTTP/2; a TLS client that did not ask for it cannot be served.
        if (socket.alpnProtocol !== 'h2') socket.destroy();
        else accept(socket);
      });
      server.on('tlsClientError', (error) =>
        logger.debug({ err: error }, 'client TLS handshake failed'),
      );
      this.#server = server;
    } else {
      this.#server = createTcpServer(accept);
    }
    // Refused at accept beyond it: a flood of connections cannot exhaust descriptors or memory.
    this.#server.maxConnections = options.maxConnections ?? 10_000;
  }

  /** Client connections open now. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Calls from now on go to `service` (a reload); the connections stay as they are. */
  use(service: Service): void {
    this.#service = service;
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<AddressInfo> {
    const { host, port } = parseListenAddress(this.#options.address);
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /**
   * Graceful stop: no new connections, GOAWAY to every client so no new calls start, calls in
   * flight run to completion — for at most `graceMs`, after which the rest are cut.
   */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const connection of this.#connections) connection.close();
    const timer = setTimeout(() => {
      for (const connection of this.#connections) {
        connection.destroy(`the proxy's shutdown grace period of ${graceMs} ms ran out`);
      }
    }, graceMs);
    await closed;
    clearTimeout(timer);
  }
}

/** What the calls of one client connection know of it: its address and verified certificate. */
function inboundConnection(socket: Socket): InboundConnection {
  const host = socket.remoteAddress;
  const peerAddress =
    host === undefined
      ? undefined
      : `${host.includes(':') ? `[${host}]` : host}:${socket.remotePort}`;
  const tls = socket as Partial<TLSSocket>;
  return {
    peerAddress,
    peerCertificate: () =>
      tls.authorized === true && tls.getPeerCertificate ? tls.getPeerCertificate() : undefined,
  };
}

/** `host:port` or `[v6]:port` to listen on; unlike an upstream address, port 0 is allowed. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (!match || port > 65_535) {
    throw new SyntaxError(`"${address}" is not host:port (IPv6 as [::1]:4140; port 0 picks one)`);
  }
  return { host: (match[1] ?? match[2]) as string, port };
}
