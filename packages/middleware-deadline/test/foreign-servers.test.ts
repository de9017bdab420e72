import { PYTHON_GRPC_MISSING, pythonGrpcAvailable } from '@switchyard/testing';
import { createChannel, createClientFactory } from 'nice-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadlineMiddleware } from '../src/index.js';
import { DeadlineProbe, startConnectProbe, startPythonProbe } from './deadline-probe.js';

const python = await pythonGrpcAvailable();
if (!python) console.warn(`Skipping the Python grpcio deadline test. ${PYTHON_GRPC_MISSING}`);

const peers = [
  { name: 'connect-node', start: startConnectProbe, available: true },
  { name: 'Python grpcio', start: startPythonProbe, available: python },
];

for (const peer of peers) {
  describe.skipIf(!peer.available)(`a ${peer.name} server`, () => {
    let server: { address: string; stop(): Promise<void> };
    let channel: ReturnType<typeof createChannel>;
    beforeAll(async () => {
      server = await peer.start();
      channel = createChannel(server.address);
    });
    afterAll(() => {
      channel.close();
      return server.stop();
    });

    it("reports a remaining time consistent with the client's deadline", async () => {
      const client = createClientFactory().use(deadlineMiddleware).create(DeadlineProbe, channel);
      const relative = await client.remaining({}, { deadline: 3_000 });
      const absolute = await client.remaining({}, { deadline: new Date(Date.now() + 8_000) });
      const none = await client.remaining({});
      expect(relative).toBeLessThanOrEqual(3_000);
      expect(relative).toBeGreaterThan(2_500);
      expect(absolute).toBeLessThanOrEqual(8_000);
      expect(absolute).toBeGreaterThan(7_500);
      expect(none).toBe(-1);
    });
  });
}
