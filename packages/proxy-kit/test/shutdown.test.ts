import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Status } from '@switchyard/core';
import { createTestClient, type RunningTestServer, startServer } from '@switchyard/testing';
import type { ClientError } from 'nice-grpc-common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCalls, startProxyProcess } from './support/proxy-process.js';

let backend: RunningTestServer;

beforeAll(async () => {
  backend = await startServer();
});

afterAll(async () => {
  await backend.stop();
});

function configWithGrace(grace: string, workers = 1): string {
  const dir = mkdtempSync(join(tmpdir(), 'proxy-kit-shutdown-'));
  const file = join(dir, 'proxy.yaml');
  writeFileSync(
    file,
    `listen: 127.0.0.1:0
workers: ${workers}
discovery: { type: static, endpoints: [${backend.address}] }
shutdown: { grace: ${grace} }
`,
  );
  return file;
}

describe('SIGTERM', () => {
  for (const workers of [1, 2]) {
    it(`with ${workers} worker(s): GOAWAY to clients, calls in flight finish, exit 0`, async () => {
      const proxy = await startProxyProcess(['--config', configWithGrace('10s', workers)]);
      const { client, close } = createTestClient(proxy.address);
      try {
        await runCalls(4, 2, () => client.unary({}));
        const inFlight = client.unary({ payload: 'slow', delayMs: 1_000 });
        await sleep(200);
        const signalledAt = Date.now();
        const exited = proxy.stop('SIGTERM');
        await sleep(200);
        // No new calls: the connection got GOAWAY and the port is closed.
        await expect(
          client.unary({}, { signal: AbortSignal.timeout(3_000) }),
        ).rejects.toMatchObject({
          code: Status.UNAVAILABLE,
        });
        expect((await inFlight).payload).toBe('slow');
        expect(await exited).toEqual({ code: 0, signal: null });
        expect(Date.now() - signalledAt).toBeLessThan(5_000);
      } finally {
        close();
      }
    });
  }

  it('cuts calls still running when the grace period ends, and still exits 0', async () => {
    const proxy = await startProxyProcess(['--config', configWithGrace('300ms')]);
    const { client, close } = createTestClient(proxy.address);
    try {
      const tooSlow = client.unary({ delayMs: 5_000 }).catch((error: ClientError) => error);
      await sleep(200);
      const signalledAt = Date.now();
      expect(await proxy.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalledAt).toBeLessThan(2_500);
      expect(((await tooSlow) as ClientError).code).toBe(Status.UNAVAILABLE);
    } finally {
      close();
    }
  });
});
