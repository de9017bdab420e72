import { CleanupSteps, createTestServiceImpl, startServers } from '@switchyard/testing';
import { ServerError, Status } from 'nice-grpc';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type BalancedChannelEvent,
  type BalancedChannelOptions,
  createBalancedChannel,
} from '../src/index.js';
import { callMany, connectedTo, eventually } from './support/load.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

/** Three backends; backend-0 answers UNAVAILABLE at once while `broken.now` is true. */
async function oneBroken() {
  const broken = { now: true };
  const servers = await startServers(3, {
    implementation: (backend) => {
      const standard = createTestServiceImpl({ backend });
      if (backend !== 'backend-0') return standard;
      return {
        ...standard,
        async unary(request, context) {
          if (broken.now) throw new ServerError(Status.UNAVAILABLE, 'backend-0 is broken');
          return standard.unary(request, context);
        },
      };
    },
  });
  cleanup.defer(() => servers.stop());
  return { broken, addresses: servers.addresses };
}

async function channelTo(addresses: readonly string[], options: BalancedChannelOptions) {
  const events: BalancedChannelEvent[] = [];
  const channel = createBalancedChannel(addresses, {
    ...options,
    onEvent: (event) => events.push(event),
  });
  cleanup.defer(() => channel.close());
  await connectedTo(channel, addresses);
  return { channel, events };
}

describe('outlier ejection, as in proxy-kit', () => {
  it('ejects an endpoint after consecutive failures, so that fast failures stop attracting calls', async () => {
    const { addresses } = await oneBroken();
    // Failing at once, backend-0 looks like the fastest endpoint to peak-EWMA: without ejection
    // it would get the most calls.
    const without = await channelTo(addresses, { outlier: false });
    const unprotected = await callMany(without.channel, { calls: 300, concurrency: 4 });
    expect(unprotected.failures.length).toBeGreaterThan(50);

    const { channel, events } = await channelTo(addresses, {
      outlier: {
        consecutiveFailures: 3,
        ejectionBackoff: { baseMs: 30_000, maxMs: 30_000, jitter: 0 },
      },
    });
    const log = await callMany(channel, { calls: 300, concurrency: 4 });
    // The failures that ejected it, and at most the calls already on their way.
    expect(log.failures.length).toBeGreaterThanOrEqual(3);
    expect(log.failures.length).toBeLessThanOrEqual(3 + 4);
    expect(log.failures[0]).toBe(
      '/switchyard.testing.v1.TestService/Unary UNAVAILABLE: backend-0 is broken',
    );
    expect(events.filter((event) => event.type === 'ejected')).toEqual([
      { type: 'ejected', address: addresses[0], consecutiveFailures: 3, ejectedMs: 30_000 },
    ]);
    expect(channel.endpoints().find((e) => e.address === addresses[0])?.ejection).toBe('open');
  });

  it('lets one probe through when the ejection ends, and restores the endpoint when it succeeds', async () => {
    const { broken, addresses } = await oneBroken();
    const { channel, events } = await channelTo(addresses, {
      balancer: 'round-robin',
      outlier: { consecutiveFailures: 3, ejectionBackoff: { baseMs: 1_500, jitter: 0 } },
    });
    const first = await callMany(channel, { calls: 30, concurrency: 1 });
    expect(first.failures).toHaveLength(3);
    expect(first.counts()['backend-0']).toBeUndefined();
    broken.now = false;
    await eventually(
      () => channel.endpoints().find((e) => e.address === addresses[0])?.ejection === 'half-open',
      10_000,
      'the ejection of backend-0 over',
    );
    // The first call to it is the probe; it succeeds, and backend-0 takes its share again.
    const later = await callMany(channel, { calls: 60, concurrency: 1 });
    expect(later.failures).toEqual([]);
    expect(events.filter((event) => event.type !== 'added')).toEqual([
      { type: 'ejected', address: addresses[0], consecutiveFailures: 3, ejectedMs: 1_500 },
      { type: 'restored', address: addresses[0] },
    ]);
    expect(later.counts()['backend-0']).toBeGreaterThanOrEqual(19);
  });

  it('does not count the client giving up (cancellation, deadline) against an endpoint', async () => {
    const servers = await startServers(2);
    cleanup.defer(() => servers.stop());
    const { channel, events } = await channelTo(servers.addresses, {
      outlier: { consecutiveFailures: 2 },
      // The app's own method config (a 20 ms timeout) stays in force beside the balancer.
      channelOptions: {
        'grpc.service_config': JSON.stringify({
          methodConfig: [
            { name: [{ service: 'switchyard.testing.v1.TestService' }], timeout: '0.020s' },
          ],
        }),
      },
    });
    const timedOut = await callMany(channel, { calls: 10, concurrency: 2, delayMs: 200 });
    expect(new Set(timedOut.failures.map((failure) => failure.split(':')[0]))).toEqual(
      new Set(['/switchyard.testing.v1.TestService/Unary DEADLINE_EXCEEDED']),
    );
    expect(timedOut.failures).toHaveLength(10);
    const cancelled = await callMany(channel, {
      calls: 10,
      concurrency: 2,
      delayMs: 200,
      cancelAfterMs: 5,
    });
    expect(cancelled.failures).toHaveLength(10);
    expect(events.filter((event) => event.type === 'ejected')).toEqual([]);
    expect(channel.endpoints().map((endpoint) => endpoint.ejection)).toEqual(['closed', 'closed']);
  });
});
