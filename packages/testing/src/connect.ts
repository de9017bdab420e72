import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { type Client, ConnectError, createClient, type HandlerContext } from '@connectrpc/connect';
import {
  connectNodeAdapter,
  createGrpcTransport,
  Http2SessionManager,
} from '@connectrpc/connect-node';
import {
  bidiResponses,
  type CallEnvironment,
  clientStreamResponse,
  serverStreamResponses,
  unaryResponse,
} from './behavior.js';
import { TestService } from './gen/connect/switchyard/testing/v1/test_pb.js';

/** Options for {@link startConnectServer}. */
export interface ConnectServerOptions {
  /** Reported as `TestResponse.backend`. */
  backend: string;
}

/** A connect-node TestService server speaking gRPC over cleartext HTTP/2 on 127.0.0.1. */
export interface RunningConnectServer {
  /** `127.0.0.1:<port>`. */
  address: string;
  port: number;
  backend: string;
  /** Stops accepting connections and resolves once running calls finish. */
  stop(): Promise<void>;
  /** Drops every connection at once. */
  forceStop(): Promise<void>;
}

/**
 * Starts the connect-node TestService peer: the same semantics as the
 * nice-grpc fixture, from an independent gRPC implementation, to check that
 * Switchyard interoperates with servers other than grpc-js.
 */
export async function startConnectServer({
  backend,
}: ConnectServerOptions): Promise<RunningConnectServer> {
  const env = (context: HandlerContext): CallEnvironment => ({
    backend,
    signal: context.signal,
    // Headers joins repeated values with ", " already.
    metadataValue: (key) => context.requestHeader.get(key) ?? undefined,
    statusError: (code, message) => new ConnectError(message, code),
  });
  const handler = connectNodeAdapter({
    grpc: true,
    grpcWeb: false,
    connect: false,
    routes: (router) =>
      router.service(TestService, {
        unary: (request, context) => unaryResponse(request, env(context)),
        serverStream: (request, context) => serverStreamResponses(request, env(context)),
        clientStream: (requests, context) => clientStreamResponse(requests, env(context)),
        bidi: (requests, context) => bidiResponses(requests, env(context)),
      }),
  });
  const server = http2.createServer(handler);
  // http2 servers only finish closing once every session has; track them so
  // stop() can end idle client connections instead of waiting on them.
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const closed = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return {
    address: `127.0.0.1:${port}`,
    port,
    backend,
    stop: () => {
      const done = closed();
      for (const session of sessions) session.close();
      return done;
    },
    forceStop: () => {
      const done = closed();
      for (const session of sessions) session.destroy();
      return done;
    },
  };
}

/** A connect-node TestService client and the HTTP/2 session it owns. */
export interface ConnectTestClient {
  client: Client<typeof TestService>;
  /** Closes the HTTP/2 session; calls still running fail. */
  close(): void;
}

/** TLS settings of {@link createConnectClient}. */
export interface ConnectClientTls {
  /** CA bundle (PEM) that verifies the server. */
  ca: string;
  /** Client certificate and key (PEM), for mutual TLS. */
  certPem?: string;
  keyPem?: string;
  /** Name the server certificate must carry. Default `localhost`. */
  servername?: string;
}

/**
 * A connect-node client speaking gRPC to `address` (`host:port`): over cleartext HTTP/2, or TLS
 * with `tls` (and mutual TLS when it has a client certificate).
 */
export function createConnectClient(
  address: string,
  { tls }: { tls?: ConnectClientTls } = {},
): ConnectTestClient {
  const baseUrl = `${tls ? 'https' : 'http'}://${address}`;
  const nodeOptions = tls && {
    ca: tls.ca,
    ...(tls.certPem && { cert: tls.certPem, key: tls.keyPem }),
    servername: tls.servername ?? 'localhost',
  };
  // The gRPC transport always speaks HTTP/2. Owning its session manager is
  // what lets close() end the connection, which would otherwise linger until
  // connect's idle timeout.
  const sessionManager = new Http2SessionManager(baseUrl, undefined, nodeOptions);
  const transport = createGrpcTransport({ baseUrl, sessionManager, nodeOptions });
  return { client: createClient(TestService, transport), close: () => sessionManager.abort() };
}
