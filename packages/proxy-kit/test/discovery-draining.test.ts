import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestClient, type RunningTestServers, startServers } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCalls, startProxyProcess } from './support/proxy-process.js';

// Endpoints come and go through discovery (here a watched file, configured in proxy.yaml): a
// removed endpoint takes no new calls, its calls in flight finish on their connection, and the
// connection closes once idle.

let backends: RunningTestServers;

beforeAll(async () => {
  backends = await startServers(3);
});

afterAll(async () => {
  await backends.stop();
});

it('drains a removed endpoint without failing its calls, and picks up an added one', async () => {
  const [a, b, c] = backends.addresses as [string, string, string];
  const dir = mkdtempSync(join(tmpdir(), 'proxy-kit-discovery-'));
  const endpoints = join(dir, 'endpoints.yaml');
  const setEndpoints = (list: string[]) =>
    writeFileSync(endpoints, `endpoints:\n${list.map((e) => `  - ${e}\n`).join('')}`);
  setEndpoints([a, b]);
  writeFileSync(
    join(dir, 'proxy.yaml'),
    `listen: 127.0.0.1:0
workers: 1
balancer: round-robin
discovery:
  type: file
  path: endpoints.yaml
  interval: 200ms
`,
  );
  // Relative paths in the config are read from the config file's directory.
  const proxy = await startProxyProcess(['--config', join(dir, 'proxy.yaml')]);
  const { client, close } = createTestClient(proxy.address);
  const backendsServing = async () =>
    new Set((await runCalls(12, 3, () => client.unary({}))).map((r) => r.backend));
  try {
    expect(await backendsServing()).toEqual(new Set(['backend-0', 'backend-1']));

    // A 1.5 s server stream on backend-0 (round-robin alternates; retry until it lands there).
    let stream: AsyncIterator<{ backend: string; sequence: number }> | undefined;
    for (let attempt = 0; attempt < 4 && !stream; attempt++) {
      const candidate = client
        .serverStream({ responseCount: 30, delayMs: 50 })
        [Symbol.asyncIterator]();
      const first = await candidate.next();
      if (first.value?.backend === 'backend-0') stream = candidate;
      else await candidate.return?.();
    }
    expect(stream).toBeDefined();
    const rest = (async () => {
      let count = 1;
      for (let r = await stream!.next(); !r.done; r = await stream!.next()) count++;
      return count;
    })();

    setEndpoints([b]);
    const removedAt = Date.now();
    await expect
      .poll(backendsServing, { timeout: 2_000, interval: 50 })
      .toEqual(new Set(['backend-1']));
    console.info(`removal took effect within ${Date.now() - removedAt} ms`);

    // The draining stream was not cut: all 30 messages and an OK status.
    expect(await rest).toBe(30);
    await expect
      .poll(() => proxy.output().includes(`"endpoint":"${a}","msg":"endpoint drained"`), {
        timeout: 2_000,
      })
      .toBe(true);

    setEndpoints([b, c]);
    await expect
      .poll(backendsServing, { timeout: 2_000, interval: 50 })
      .toEqual(new Set(['backend-1', 'backend-2']));
  } finally {
    close();
    await proxy.stop();
  }
}, 30_000);
