// A TestService backend in a process of its own, so a test can SIGSTOP it, and so that its
// latency is not the test runner's (whose garbage collection would otherwise pause it).
// Usage: node backend.mjs <name> [extra delay ms for unary calls] [port]
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestServiceImpl, TestServiceDefinition } from '@switchyard/testing';
import { createServer } from 'nice-grpc';

const [backend = 'backend', delay = '0', port = '0'] = process.argv.slice(2);
const extra = Number(delay);
const server = await startOn(Number(port), {
  backend,
  implementation: (name) => {
    const impl = createTestServiceImpl({ backend: name });
    if (extra === 0) return impl;
    return {
      ...impl,
      unary: async (request, context) => {
        await sleep(extra);
        return impl.unary(request, context);
      },
    };
  },
});
process.stdout.write(`${JSON.stringify({ listening: server.address })}\n`);

/** Like @switchyard/testing's startServer, but on a chosen port so a restart can reuse it. */
async function startOn(wanted, { backend: name, implementation }) {
  const grpc = createServer();
  grpc.add(TestServiceDefinition, implementation(name));
  const bound = await grpc.listen(`127.0.0.1:${wanted}`);
  return { address: `127.0.0.1:${bound}`, forceStop: () => grpc.forceShutdown() };
}
// Exit with the test runner: stdin closes when the parent dies.
process.stdin.on('end', () => process.exit(0)).resume();
process.on('SIGTERM', () => {
  server.forceStop();
  process.exit(0);
});
