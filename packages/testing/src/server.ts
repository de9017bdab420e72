import type { ChannelOptions, ServerCredentials } from '@grpc/grpc-js';
import { createServer, type Server } from 'nice-grpc';
import type { ServerMiddleware } from 'nice-grpc-common';
import {
  TestServiceDefinition,
  type TestServiceImplementation,
} from './gen/nice/switchyard/testing/v1/test.js';
import { createTestServiceImpl } from './service.js';

/** Options shared by {@link startServer} and {@link startServers}. */
export interface TestServerOptions {
  /** Server middleware, attached in order with `createServer().use(...)`. */
  middleware?: readonly ServerMiddleware[];
  /** Defaults to insecure. */
  credentials?: ServerCredentials;
  /** grpc-js server options, such as `grpc.max_receive_message_length`. */
  serverOptions?: ChannelOptions;
  /**
   * Replaces the standard implementation; called once per server with its
   * backend name. Spread `createTestServiceImpl({ backend })` to override
   * only some methods.
   */
  implementation?: (backend: string) => TestServiceImplementation;
}

/** Options for {@link startServer}. */
export interface StartServerOptions extends TestServerOptions {
  /** Defaults to `backend-0`. */
  backend?: string;
}

/** Options for {@link startServers}. */
export interface StartServersOptions extends TestServerOptions {
  /** One name per server; defaults to `backend-0` … `backend-<n-1>`. */
  backends?: readonly string[];
}

/** A TestService server listening on 127.0.0.1. */
export interface RunningTestServer {
  /** `127.0.0.1:<port>`, ready for `createChannel`. */
  address: string;
  port: number;
  backend: string;
  server: Server;
  /** Stops accepting calls and resolves once the running ones finish. */
  stop(): Promise<void>;
  /** Cancels running calls (clients see CANCELLED) and stops at once. */
  forceStop(): void;
}

/** Several TestService servers, stopped together. */
export interface RunningTestServers {
  servers: RunningTestServer[];
  /** The servers' addresses, in order. */
  addresses: string[];
  stop(): Promise<void>;
  forceStop(): void;
}

/** Starts one nice-grpc TestService server on `127.0.0.1:0`. */
export async function startServer(options: StartServerOptions = {}): Promise<RunningTestServer> {
  const { backend = 'backend-0', middleware = [], credentials, serverOptions } = options;
  const implementation =
    options.implementation ?? ((name) => createTestServiceImpl({ backend: name }));
  let server: Server = createServer(serverOptions);
  for (const m of middleware) server = server.use(m);
  server.add(TestServiceDefinition, implementation(backend));
  const port = await server.listen('127.0.0.1:0', credentials);
  return {
    address: `127.0.0.1:${port}`,
    port,
    backend,
    server,
    stop: () => server.shutdown(),
    forceStop: () => server.forceShutdown(),
  };
}

/** Starts `count` TestService servers, each on its own port, named by `options.backends`. */
export async function startServers(
  count: number,
  options: StartServersOptions = {},
): Promise<RunningTestServers> {
  const { backends = Array.from({ length: count }, (_, i) => `backend-${i}`), ...common } = options;
  if (backends.length !== count) {
    throw new RangeError(`${backends.length} backend names given for ${count} servers`);
  }
  const started = await Promise.allSettled(
    backends.map((backend) => startServer({ ...common, backend })),
  );
  const servers = started.flatMap((result) =>
    result.status === 'fulfilled' ? [result.value] : [],
  );
  const failure = started.find((result) => result.status === 'rejected');
  if (failure) {
    for (const server of servers) server.forceStop();
    throw failure.reason;
  }
  return {
    servers,
    addresses: servers.map((server) => server.address),
    stop: async () => {
      await Promise.all(servers.map((server) => server.stop()));
    },
    forceStop: () => {
      for (const server of servers) server.forceStop();
    },
  };
}
