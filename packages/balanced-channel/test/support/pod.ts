import { createTestServiceImpl, TestServiceDefinition } from '@switchyard/testing';
import { createServer } from 'nice-grpc';

/**
 * One TestService server on `host:port`, answering with its host as `backend`: a pod that a test
 * can stop on its own, beside the ones `startBackendsOnOnePort` starts on the same port.
 */
export async function startPod(host: string, port: number) {
  const server = createServer();
  server.add(TestServiceDefinition, createTestServiceImpl({ backend: host }));
  await server.listen(`${host}:${port}`);
  return {
    /** Graceful, as a pod's SIGTERM: GOAWAY, calls in flight finish. */
    shutdown: () => server.shutdown(),
    /** A crash: connections reset, calls in flight fail. */
    kill: () => server.forceShutdown(),
  };
}
