import { createTestServiceImpl, TestServiceDefinition } from '@switchyard/testing';
import { createServer, type Server } from 'nice-grpc';

/**
 * TestService servers on several loopback addresses sharing one port, as a headless Service's
 * pods do (one A record per pod, one port for all). Each answers with its host as `backend`.
 */
export async function startBackendsOnOnePort(hosts: readonly string[]) {
  for (let attempt = 0; ; attempt++) {
    const servers: Server[] = [];
    try {
      let port = 0;
      for (const host of hosts) {
        const server = createServer();
        server.add(TestServiceDefinition, createTestServiceImpl({ backend: host }));
        servers.push(server);
        port = await server.listen(`${host}:${port}`);
      }
      return { port, close: () => Promise.all(servers.map((s) => s.shutdown())) };
    } catch (error) {
      // The port the first host got may be taken on another: try a fresh one.
      for (const server of servers) server.forceShutdown();
      if (attempt >= 5) throw error;
    }
  }
}
