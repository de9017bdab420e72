import { type Channel, createChannel, createClient, createServer, type Server } from 'nice-grpc';
import type { ServerMiddleware } from 'nice-grpc-common';
import {
  type HealthClient,
  HealthDefinition,
  HealthServiceImpl,
  type HealthServiceOptions,
  HealthState,
} from '../../src/index.js';

/** A nice-grpc server on 127.0.0.1:0 serving grpc.health.v1 over `health`, and a client for it. */
export interface RunningHealthServer {
  health: HealthState;
  server: Server;
  address: string;
  port: number;
  channel: Channel;
  client: HealthClient;
  /** Closes the client channel and force-stops the server. */
  close(): void;
}

export async function startHealthServer(
  options: {
    health?: HealthState;
    service?: HealthServiceOptions;
    middleware?: ServerMiddleware;
    /** Adds more services before listening. */
    add?: (server: Server) => void;
    /** Default 0: any free port. */
    port?: number;
  } = {},
): Promise<RunningHealthServer> {
  const health = options.health ?? HealthState();
  const server = options.middleware ? createServer().use(options.middleware) : createServer();
  server.add(HealthDefinition, HealthServiceImpl(health, options.service));
  options.add?.(server);
  const port = await server.listen(`127.0.0.1:${options.port ?? 0}`);
  const address = `127.0.0.1:${port}`;
  const channel = createChannel(address);
  return {
    health,
    server,
    address,
    port,
    channel,
    client: createClient(HealthDefinition, channel),
    close() {
      channel.close();
      server.forceShutdown();
    },
  };
}
