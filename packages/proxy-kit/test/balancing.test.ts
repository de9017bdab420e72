import { createTestClient, type RunningTestServers, startServers } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCalls, startProxyProcess } from './support/proxy-process.js';

// The "pinning" demonstration: one client connection, three backends, 3,000 unary calls.

let backends: RunningTestServers;

beforeAll(async () => {
  backends = await startServers(3);
});

afterAll(async () => {
  await backends.stop();
});

/** Makes 3,000 unary calls over one client connection to `address`; counts calls per backend. */
async function spread(address: string): Promise<Record<string, number>> {
  const { client, close } = createTestClient(address);
  try {
    const counts: Record<string, number> = {};
    await runCalls(3000, 64, async (i) => {
      const { backend } = await client.unary({ payload: `call ${i}` });
      counts[backend] = (counts[backend] ?? 0) + 1;
    });
    return counts;
  } finally {
    close();
  }
}

describe('one client connection, three backends, 3,000 unary calls', () => {
  it('without the proxy, the connection pins every call to one backend', async () => {
    // What an L4 Kubernetes Service gives: the connection lands on one pod. Here the client
    // connects to one backend directly, which is the same thing.
    const counts = await spread(backends.addresses[0]!);
    expect(counts).toEqual({ 'backend-0': 3000 });
  });

  it('round-robin gives each backend 33% ± 5%', async () => {
    const proxy = await startProxyProcess([
      '--upstream',
      backends.addresses.join(','),
      '--balancer',
      'round-robin',
    ]);
    try {
      const counts = await spread(proxy.address);
      expect(Object.keys(counts).sort()).toEqual(['backend-0', 'backend-1', 'backend-2']);
      for (const count of Object.values(counts)) {
        expect(count / 3000).toBeGreaterThan(0.33 - 0.05);
        expect(count / 3000).toBeLessThan(0.33 + 0.05);
      }
    } finally {
      await proxy.stop();
    }
  });

  for (const balancer of ['p2c-ewma', 'p2c-least-request']) {
    it(`${balancer} sends traffic to every backend`, async () => {
      const proxy = await startProxyProcess([
        '--upstream',
        backends.addresses.join(','),
        '--balancer',
        balancer,
      ]);
      try {
        const counts = await spread(proxy.address);
        expect(Object.keys(counts).sort()).toEqual(['backend-0', 'backend-1', 'backend-2']);
        expect(Object.values(counts).reduce((a, b) => a + b)).toBe(3000);
      } finally {
        await proxy.stop();
      }
    });
  }
});
