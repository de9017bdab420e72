import { CleanupSteps, startServers } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createBalancedChannel } from '../src/index.js';
import { callMany, connectedTo, eventually } from './support/load.js';
import { startRelay } from './support/relay.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

/** `count` backends, each behind a relay that counts the connections made to it. */
async function relayedBackends(count: number) {
  const servers = await startServers(count);
  cleanup.defer(() => servers.stop());
  const relays: Awaited<ReturnType<typeof startRelay>>[] = [];
  for (const address of servers.addresses) {
    const relay = await startRelay(address);
    cleanup.defer(() => relay.close());
    relays.push(relay);
  }
  return relays;
}

function channelTo(
  relays: readonly { address: string }[],
  options?: Parameters<typeof createBalancedChannel>[1],
) {
  const channel = createBalancedChannel(
    relays.map((relay) => relay.address),
    options,
  );
  cleanup.defer(() => channel.close());
  return channel;
}

describe('connections', () => {
  it('opens one connection per endpoint, however many calls are in flight', async () => {
    const relays = await relayedBackends(3);
    const channel = channelTo(relays);
    const log = await callMany(channel, { calls: 600, concurrency: 32 });
    expect(log.failures).toEqual([]);
    expect(Object.keys(log.counts()).sort()).toEqual(['backend-0', 'backend-1', 'backend-2']);
    expect(relays.map((relay) => relay.accepted())).toEqual([1, 1, 1]);
  });

  it('finds a silently dead connection with keepalive PINGs while idle, and replaces it', async () => {
    const relays = await relayedBackends(2);
    const addresses = relays.map((relay) => relay.address);
    const channel = channelTo(relays, { keepaliveMs: 200, keepaliveTimeoutMs: 200 });
    await connectedTo(channel, addresses);
    relays[0]!.blackHole();
    // No call is made: only a PING left unanswered can tell the connection is dead.
    await eventually(() => relays[0]!.accepted() >= 2, 5_000, 'a second connection to backend-0');
    await connectedTo(channel, addresses);
    const log = await callMany(channel, { calls: 100, concurrency: 4 });
    expect(log.failures).toEqual([]);
    expect(Object.keys(log.counts()).sort()).toEqual(['backend-0', 'backend-1']);
  });
});
