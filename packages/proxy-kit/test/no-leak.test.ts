import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { staticDiscovery } from '@switchyard/discovery';
import { createTestClient, startServers } from '@switchyard/testing';
import { expect, it } from 'vitest';
import { startProxy } from '../src/index.js';
import { runCalls } from './support/proxy-process.js';

// Calls that end every way — answered, failed, cancelled mid-flight, streams cut short — leave
// nothing behind in the proxy: the heap after each round returns to the same level.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

it('keeps no state from finished, failed or cancelled calls', async () => {
  const backends = await startServers(2);
  const proxy = await startProxy({
    listen: '127.0.0.1:0',
    discovery: staticDiscovery(backends.addresses),
    outlier: { consecutiveFailures: Number.MAX_SAFE_INTEGER },
  });
  const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
  const round = () =>
    runCalls(1500, 64, async (i) => {
      const controller = new AbortController();
      if (i % 3 === 0) setTimeout(() => controller.abort(), Math.random() * 5);
      try {
        if (i % 2) {
          await client.unary(
            { delayMs: i % 5, statusCode: i % 7 === 0 ? 14 : 0 },
            { signal: controller.signal },
          );
        } else {
          for await (const _ of client.serverStream(
            { responseCount: 5, delayMs: 1 },
            { signal: controller.signal },
          ))
            void _;
        }
      } catch {
        // failures and cancellations are the point
      }
    });
  try {
    await round(); // warm-up: JIT, connections, HPACK tables
    const baseline = heapAfterGc();
    for (let i = 0; i < 3; i++) await round();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const growth = heapAfterGc() - baseline;
    console.info(`heap growth over 4,500 calls: ${(growth / 1024).toFixed(0)} KiB`);
    expect(growth).toBeLessThan(2 * 2 ** 20);
  } finally {
    close();
    await proxy.close(500);
    await backends.stop();
  }
}, 60_000);
