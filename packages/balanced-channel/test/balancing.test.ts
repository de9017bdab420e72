import {
  CleanupSteps,
  createTestServiceImpl,
  startServers,
  TestServiceDefinition,
} from '@switchyard/testing';
import { delay } from 'abort-controller-x';
import { createClient } from 'nice-grpc';
import { afterEach, describe, expect, it } from 'vitest';
import { createBalancedChannel } from '../src/index.js';
import { callMany, connectedTo } from './support/load.js';

const SLOW_MS = 50;

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

/** Three TestService servers on 127.0.0.1; with `slowFirst`, backend-0 answers 50 ms late. */
async function threeBackends({ slowFirst = false } = {}) {
  const servers = await startServers(3, {
    implementation: (backend) => {
      const standard = createTestServiceImpl({ backend });
      if (!slowFirst || backend !== 'backend-0') return standard;
      return {
        ...standard,
        async unary(request, context) {
          await delay(context.signal, SLOW_MS);
          return standard.unary(request, context);
        },
      };
    },
  });
  cleanup.defer(() => servers.stop());
  return servers;
}

function channelTo(addresses: readonly string[], balancer?: 'round-robin' | 'p2c-least-request') {
  const channel = createBalancedChannel(addresses, { balancer });
  cleanup.defer(() => channel.close());
  return channel;
}

describe('one client, three backends', () => {
  it('round-robin spreads calls per request, 33% ± 5% to each', async () => {
    const { addresses } = await threeBackends();
    const channel = channelTo(addresses, 'round-robin');
    await connectedTo(channel, addresses);
    const log = await callMany(channel, { calls: 900, concurrency: 8 });
    expect(log.failures).toEqual([]);
    const shares = log.shares();
    expect(Object.keys(shares).sort()).toEqual(['backend-0', 'backend-1', 'backend-2']);
    for (const share of Object.values(shares)) {
      expect(share).toBeGreaterThanOrEqual(33.3 - 5);
      expect(share).toBeLessThanOrEqual(33.3 + 5);
    }
  });

  it('p2c-least-request spreads evenly loaded backends within 33% ± 5% too', async () => {
    const { addresses } = await threeBackends();
    const channel = channelTo(addresses, 'p2c-least-request');
    await connectedTo(channel, addresses);
    const log = await callMany(channel, { calls: 1_500, concurrency: 12, delayMs: 1 });
    expect(log.failures).toEqual([]);
    for (const share of Object.values(log.shares())) {
      expect(Math.abs(share - 33.3)).toBeLessThanOrEqual(5);
    }
  });

  it('P2C peak-EWMA (the default) sends < 10% of calls to a backend 50 ms slower than the others', async () => {
    const { addresses } = await threeBackends({ slowFirst: true });
    const channel = channelTo(addresses);
    await connectedTo(channel, addresses);
    const log = await callMany(channel, { calls: 2_000, concurrency: 8 });
    expect(log.failures).toEqual([]);
    expect(log.shares()['backend-0'] ?? 0).toBeLessThan(10);
    // It is avoided, not dropped: the other two share the rest.
    expect(log.shares()['backend-1']).toBeGreaterThan(30);
    expect(log.shares()['backend-2']).toBeGreaterThan(30);
  });

  it('counts each pick at once, so a burst of calls in one turn spreads by their load', async () => {
    // grpc-js starts a call's stream only after a promise (the call credentials' metadata): a
    // pick that waited for that to count its call would let every pick of a burst see the
    // same loads, and all of them would go to the endpoint estimated fastest.
    const servers = await startServers(2);
    cleanup.defer(() => servers.stop());
    const channel = createBalancedChannel(servers.addresses);
    cleanup.defer(() => channel.close());
    await connectedTo(channel, servers.addresses);
    const client = createClient(TestServiceDefinition, channel);
    // Calls 8 at a time, so that both endpoints are measured (one at a time, the first one
    // measured fast keeps every call, and the other stays priced at the 30 ms default).
    for (let i = 0; i < 25; i++)
      await Promise.all(Array.from({ length: 8 }, () => client.unary({})));
    // And the peaks of the first, cold answers fade (τ 500 ms).
    await delay(new AbortController().signal, 2_500);
    const answered = await Promise.all(
      Array.from({ length: 40 }, () => client.unary({}).then((r) => r.backend)),
    );
    const toEach = ['backend-0', 'backend-1'].map((b) => answered.filter((a) => a === b).length);
    // Counted late, all 40 went to one (40/0, every run); counted at once, the split follows
    // the two estimates (33/7 to 20/20 seen).
    expect(Math.min(...toEach), JSON.stringify(toEach)).toBeGreaterThanOrEqual(3);
  });

  it('is a channel nice-grpc clients take, for every call kind', async () => {
    const { addresses } = await threeBackends();
    const channel = channelTo(addresses, 'round-robin');
    const client = createClient(TestServiceDefinition, channel);
    const streamed: string[] = [];
    for await (const response of client.serverStream({ responseCount: 3 })) {
      streamed.push(response.backend);
    }
    expect(streamed).toHaveLength(3);
    async function* requests() {
      yield { payload: 'a' };
      yield { payload: 'b' };
    }
    expect((await client.clientStream(requests())).receivedCount).toBe(2);
    const echoed: string[] = [];
    for await (const response of client.bidi(requests())) echoed.push(response.payload);
    expect(echoed).toEqual(['a', 'b']);
  });
});
