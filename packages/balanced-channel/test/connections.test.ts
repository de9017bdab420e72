import { type RunningTestServers, startServers } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type BalancedChannel, createBalancedChannel } from '../src/index.js';
import { callMany, connectedTo, eventually } from './support/load.js';
import { startRelay } from './support/relay.js';

let servers: RunningTestServers | undefined;
const channels: BalancedChannel[] = [];
const relays: Awaited<ReturnType<typeof startRelay>>[] = [];
afterEach(async () => {
  for (const channel of channels.splice(0)) channel.close();
  for (const relay of relays.splice(0)) await relay.close();
  await servers?.stop();
  servers = undefined;
});

/** `count` backends, each behind a relay that counts the connections made to it. */
async function relayedBackends(count: number) {
  servers = await startServers(count);
  for (const address of servers.addresses) relays.push(await startRelay(address));
  return relays.map((relay) => relay.address);
}

describe('connections', () => {
  it('opens one connection per endpoint, however many calls are in flight', async () => {
    const addresses = await relayedBackends(3);
    const channel = createBalancedChannel(addresses);
    channels.push(channel);
    const log = await callMany(channel, { calls: 600, concurrency: 32 });
    expect(log.failures).toEqual([]);
    expect(Object.keys(log.counts()).sort()).toEqual(['backend-0', 'backend-1', 'backend-2']);
    expect(relays.map((relay) => relay.accepted())).toEqual([1, 1, 1]);
  });

  it('finds a silently dead connection with keepalive PINGs while idle, and replaces it', async () => {
    const addresses = await relayedBackends(2);
    const channel = createBalancedChannel(addresses, {
      keepaliveMs: 200,
      keepaliveTimeoutMs: 200,
    });
    channels.push(channel);
    await connectedTo(channel, addresses);
    relays[0]!.blackHole();
    // No call is made: only a PING left unanswered can tell the connection is dead.
    await eventually(() => relays[0]!.accepted() === 2, 5_000, 'a second connection to backend-0');
    await connectedTo(channel, addresses);
    const log = await callMany(channel, { calls: 100, concurrency: 4 });
    expect(log.failures).toEqual([]);
    expect(Object.keys(log.counts()).sort()).toEqual(['backend-0', 'backend-1']);
  });
});
