import { staticDiscovery } from '@switchyard/discovery';
import { callTestService, createTestClient, startServers } from '@switchyard/testing';
import { expect, it } from 'vitest';
import { startProxy } from '../src/index.js';

it('smoke', async () => {
  const backends = await startServers(3);
  const discovery = staticDiscovery(backends.addresses);
  const proxy = await startProxy({ listen: '127.0.0.1:0', discovery, balancer: 'round-robin' });
  const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
  const counts: Record<string, number> = {};
  for (let i = 0; i < 30; i++) {
    const r = await client.unary({ payload: 'x' });
    counts[r.backend] = (counts[r.backend] ?? 0) + 1;
  }
  console.log(counts);
  for (const method of ['Unary', 'ServerStream', 'ClientStream', 'Bidi'] as const) {
    const out = await callTestService(client, {
      method,
      requests:
        method.includes('Stream') || method === 'Bidi'
          ? [
              { payload: 'a', responseCount: 3 },
              ...(method === 'ServerStream' ? [] : [{ payload: 'b' }]),
            ]
          : [{ payload: 'a', statusCode: 5, statusMessage: 'nope ✓' }],
      metadata: { 'x-a': 'b' },
    });
    console.log(method, out.status, out.responses.length);
  }
  close();
  await proxy.close(1000);
  await backends.stop();
  expect(Object.keys(counts)).toHaveLength(3);
});
