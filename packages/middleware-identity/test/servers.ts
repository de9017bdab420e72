import type { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import { currentCallScope, withInboundCall } from '@switchyard/nice-grpc';
import {
  createTestClient,
  createTestServiceImpl,
  type TestClient,
  TestResponse,
  type TestServiceClient,
  TestServiceDefinition,
  type TestServiceImplementation,
} from '@switchyard/testing';
import { createServer, type Server } from 'nice-grpc';
import { afterEach } from 'vitest';
import {
  type AuthorizationOptions,
  authorizationServerMiddleware,
  type PeerIdentityContext,
  type PeerIdentityOptions,
  peerIdentityServerMiddleware,
} from '../src/index.js';

/** What the identity-reporting handler saw, returned as its unary response's payload. */
export interface SeenIdentity {
  /** `context.peerIdentity` */
  id?: string;
  source?: string;
  tlsPeer?: string;
  serialNumber?: string;
  /** `currentCallScope().peer`, what calls made by the handler inherit */
  scopePeer?: { id: string; source: string };
}

/**
 * TestService whose Unary reports the caller's identity as JSON in `payload`; the other methods
 * behave as the standard fixture does.
 */
export function identityReportingService(
  backend: string,
): TestServiceImplementation<PeerIdentityContext> {
  return {
    ...createTestServiceImpl({ backend }),
    async unary(request, context) {
      const identity = context.peerIdentity;
      const seen: SeenIdentity = {
        id: identity?.id,
        source: identity?.source,
        tlsPeer: identity?.tlsPeer.id,
        serialNumber: identity?.tlsPeer.serialNumber,
        scopePeer: currentCallScope()?.peer,
      };
      const metadata: Record<string, string> = {};
      for (const key of request.echoMetadata) {
        const values = context.metadata.getAll(key);
        if (values.length > 0) metadata[key] = values.join(', ');
      }
      return TestResponse.fromPartial({ backend, payload: JSON.stringify(seen), metadata });
    },
  };
}

export interface IdentityServerOptions {
  credentials: ServerCredentials;
  identity?: PeerIdentityOptions;
  /** Installs the authorization middleware after the identity one. */
  authorization?: AuthorizationOptions;
  implementation?: TestServiceImplementation<PeerIdentityContext>;
  /** Leaves out `withInboundCall()`, to show the error that causes. */
  withoutInterceptor?: boolean;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.forceShutdown()));
});

/** Starts a TestService server on 127.0.0.1 with the identity middleware; stopped after the test. */
export async function startIdentityServer(options: IdentityServerOptions): Promise<string> {
  const { credentials, identity, authorization, withoutInterceptor = false } = options;
  const base = createServer(withoutInterceptor ? {} : withInboundCall()).use(
    peerIdentityServerMiddleware(identity),
  );
  const server = authorization ? base.use(authorizationServerMiddleware(authorization)) : base;
  server.add(TestServiceDefinition, options.implementation ?? identityReportingService('identity'));
  servers.push(server);
  const port = await server.listen('127.0.0.1:0', credentials);
  return `127.0.0.1:${port}`;
}

/** Parses the identity-reporting handler's answer. */
export function seen(response: TestResponse): SeenIdentity {
  return JSON.parse(response.payload) as SeenIdentity;
}

const clients: TestClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

/**
 * A TestService client on a channel and connection of its own (grpc-js would otherwise share one
 * connection among channels with equal credentials), closed after the test. It verifies the
 * server as `localhost` unless told otherwise: grpc-js would send the IP address as the TLS
 * server name, which node flags as deprecated (DEP0123, RFC 6066 forbids IP addresses there).
 */
export function connectClient(
  address: string,
  credentials: ChannelCredentials,
  serverName = 'localhost',
): TestServiceClient {
  const client = createTestClient(address, {
    credentials,
    channelOptions: {
      'grpc.ssl_target_name_override': serverName,
      'grpc.use_local_subchannel_pool': 1,
    },
  });
  clients.push(client);
  return client.client;
}
