import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { staticDiscovery } from '@switchyard/discovery';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startBackendsOnOnePort } from '../../discovery/test/support/backends.js';
import { startDnsServer } from '../../discovery/test/support/dns-server.js';
import { type BalancedChannel, createBalancedChannel } from '../src/index.js';
import { callMany, connectedTo, eventually, keepCalling } from './support/load.js';
import { startPod } from './support/pod.js';

let backends: Awaited<ReturnType<typeof startBackendsOnOnePort>>;
let dir: string;
const channels: BalancedChannel[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
beforeEach(async () => {
  backends = await startBackendsOnOnePort(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  dir = await mkdtemp(join(tmpdir(), 'switchyard-balanced-discovery-'));
});
afterEach(async () => {
  for (const channel of channels.splice(0)) channel.close();
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await backends.close();
  await rm(dir, { recursive: true, force: true });
});

const at = (host: string) => `${host}:${backends.port}`;

function track(channel: BalancedChannel): BalancedChannel {
  channels.push(channel);
  return channel;
}

/** Keeps calls going while `change` runs, then checks none failed and who answered after it. */
async function acrossChange(
  channel: BalancedChannel,
  change: () => Promise<void>,
  after: readonly string[],
) {
  const load = keepCalling(channel, { concurrency: 4, delayMs: 2 });
  await load.answeredBy('127.0.0.1', 10);
  await change();
  await connectedTo(channel, after.map(at));
  const changedAt = load.log.backends.length;
  for (const host of after) await load.answeredBy(host, 10);
  const log = await load.stop();
  expect(log.failures).toEqual([]);
  expect(new Set(log.backends.slice(changedAt + 4))).toEqual(new Set(after));
}

describe('endpoints added and removed through each discovery source take effect without a restart', () => {
  it('dns:///host:port: re-resolved records', async () => {
    const dns = await startDnsServer({ 'api.test': { A: ['127.0.0.1', '127.0.0.2'] } });
    cleanups.push(dns.close);
    const channel = track(
      createBalancedChannel(`dns://${dns.server}/api.test:${backends.port}`, {
        dns: { type: 'A', intervalMs: 100 },
      }),
    );
    await connectedTo(channel, ['127.0.0.1', '127.0.0.2'].map(at));
    await acrossChange(channel, async () => {
      dns.state.zones['api.test'] = { A: ['127.0.0.1', '127.0.0.3'] };
    }, ['127.0.0.1', '127.0.0.3']);
  });

  it('file:///path: a rewritten endpoints file', async () => {
    const file = join(dir, 'endpoints.yaml');
    await writeFile(file, `endpoints: [${at('127.0.0.1')}, ${at('127.0.0.2')}]\n`);
    const channel = track(createBalancedChannel(`file://${file}`));
    await connectedTo(channel, ['127.0.0.1', '127.0.0.2'].map(at));
    await acrossChange(channel, async () => {
      // As editors and ConfigMap mounts replace a file: an atomic rename.
      await writeFile(`${file}.new`, `endpoints: [${at('127.0.0.1')}, ${at('127.0.0.3')}]\n`);
      await rename(`${file}.new`, file);
    }, ['127.0.0.1', '127.0.0.3']);
  });

  it('a Discovery of the caller: followed, and left open when the channel closes', async () => {
    // A static list never changes by itself; an app that changes its endpoints hands a Discovery.
    const discovery = staticDiscovery([at('127.0.0.1'), at('127.0.0.2')]);
    const channel = track(createBalancedChannel(discovery, { balancer: 'round-robin' }));
    const log = await callMany(channel, { calls: 40 });
    expect(log.failures).toEqual([]);
    channel.close();
    const received: string[][] = [];
    discovery.subscribe(({ endpoints }) => received.push(endpoints.map((e) => e.address)));
    expect(received).toEqual([[at('127.0.0.1'), at('127.0.0.2')]]);
    await discovery.close();
  });

  it('static:///host:port,host:port and an array of host:port', async () => {
    const fromString = track(
      createBalancedChannel(`static:///${at('127.0.0.1')},${at('127.0.0.2')}`),
    );
    const fromArray = track(createBalancedChannel([at('127.0.0.2'), at('127.0.0.3')]));
    await connectedTo(fromString, ['127.0.0.1', '127.0.0.2'].map(at));
    await connectedTo(fromArray, ['127.0.0.2', '127.0.0.3'].map(at));
  });
});

describe('re-resolution', () => {
  it('a lost connection makes discovery look again at once, not at its next interval', async () => {
    const pod = await startPod('127.0.0.4', backends.port);
    const dns = await startDnsServer({ 'api.test': { A: ['127.0.0.1', '127.0.0.4'] } });
    cleanups.push(dns.close, async () => pod.kill());
    const channel = track(
      createBalancedChannel(`dns://${dns.server}/api.test:${backends.port}`, {
        // Far longer than the test: only a refresh can bring the new set in time.
        dns: { type: 'A', intervalMs: 60_000, minRefreshIntervalMs: 50 },
        onError: () => {},
      }),
    );
    await connectedTo(channel, ['127.0.0.1', '127.0.0.4'].map(at));
    const queriesBefore = dns.queries.length;
    dns.state.zones['api.test'] = { A: ['127.0.0.1', '127.0.0.2'] };
    const killedAt = performance.now();
    pod.kill();
    await connectedTo(channel, ['127.0.0.1', '127.0.0.2'].map(at));
    expect(dns.queries.length).toBeGreaterThan(queriesBefore);
    expect(performance.now() - killedAt).toBeLessThan(5_000);
  });

  it('calls fail with what discovery says when it has never found an endpoint', async () => {
    const channel = track(
      createBalancedChannel(`file://${join(dir, 'missing.yaml')}`, { onError: () => {} }),
    );
    const log = await callMany(channel, { calls: 1, concurrency: 1 });
    expect(log.failures).toHaveLength(1);
    expect(log.failures[0]).toMatch(
      /^\/switchyard\.testing\.v1\.TestService\/Unary UNAVAILABLE: .*cannot read endpoints file .*missing\.yaml: ENOENT/,
    );
  });

  it('keeps every endpoint connected, reconnecting to one that restarts', async () => {
    const pod = await startPod('127.0.0.4', backends.port);
    const channel = track(createBalancedChannel([at('127.0.0.1'), at('127.0.0.4')]));
    await connectedTo(channel, ['127.0.0.1', '127.0.0.4'].map(at));
    pod.kill();
    await eventually(
      () => channel.endpoints().some((e) => e.connectivity !== 'READY'),
      5_000,
      'the killed pod seen as disconnected',
    );
    const restarted = await startPod('127.0.0.4', backends.port);
    cleanups.push(async () => restarted.kill());
    // No call is made meanwhile: the channel reconnects of its own accord.
    await connectedTo(channel, ['127.0.0.1', '127.0.0.4'].map(at), 10_000);
  });
});
