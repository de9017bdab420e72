import { createTestClient, type RunningTestServer, startServer } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCalls, startProxyProcess } from './support/proxy-process.js';

let backend: RunningTestServer;

beforeAll(async () => {
  backend = await startServer();
});

afterAll(async () => {
  await backend.stop();
});

function workerPids(output: string): number[] {
  return output
    .split('\n')
    .filter((line) => line.includes('"msg":"listening"'))
    .map((line) => (JSON.parse(line) as { pid: number }).pid);
}

it('--workers 2: two processes serve one port; a worker that dies is replaced', async () => {
  const proxy = await startProxyProcess(['--upstream', backend.address, '--workers', '2']);
  try {
    await expect.poll(() => workerPids(proxy.output()).length, { timeout: 10_000 }).toBe(2);
    const [first] = workerPids(proxy.output());
    process.kill(first!, 'SIGKILL');
    await expect.poll(() => workerPids(proxy.output()).length, { timeout: 10_000 }).toBe(3);
    expect(proxy.output()).toContain('worker died; starting a replacement');
    // Several client connections, so that both workers take some.
    const clients = Array.from({ length: 4 }, () => createTestClient(proxy.address));
    try {
      const results = await Promise.all(
        clients.map(({ client }) => runCalls(20, 4, () => client.unary({}))),
      );
      expect(results.flat()).toHaveLength(80);
    } finally {
      for (const { close } of clients) close();
    }
  } finally {
    expect(await proxy.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  }
});
