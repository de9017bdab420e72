import { afterEach, describe, expect, it } from 'vitest';
import { type Discovery, type DiscoveryError, dnsDiscovery } from '../src/index.js';
import { startDnsServer } from './support/dns-server.js';
import { eventually, logUpdates } from './support/updates.js';

const name = 'api.prod.svc.cluster.local';
const intervalMs = 300;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(zones: Parameters<typeof startDnsServer>[0]) {
  const dns = await startDnsServer(zones);
  cleanups.push(dns.close);
  const errors: DiscoveryError[] = [];
  const start = (options: Partial<Parameters<typeof dnsDiscovery>[0]> = {}): Discovery => {
    const discovery = dnsDiscovery({
      name,
      port: 50051,
      intervalMs,
      servers: [dns.server],
      timeoutMs: 500,
      onError: (e) => errors.push(e),
      ...options,
    });
    cleanups.push(() => discovery.close());
    return discovery;
  };
  return { dns, errors, start };
}

describe('dnsDiscovery', () => {
  it('resolves A records from the configured server and follows a change within one interval', async () => {
    const { dns, start } = await setup({ [name]: { A: ['10.0.0.2', '10.0.0.1'] } });
    const log = logUpdates(start());
    await log.waitFor(['10.0.0.1:50051', '10.0.0.2:50051']);

    dns.state.zones[name] = { A: ['10.0.0.1', '10.0.0.3'] };
    const changedAt = performance.now();
    const { at } = await log.waitFor(['10.0.0.1:50051', '10.0.0.3:50051']);
    // The next periodic resolution picks the change up; slack for a loaded 2-core machine.
    expect(at - changedAt).toBeLessThan(intervalMs + 250);
    expect(log.updates[1]!.update.endpoints[1]).toEqual({
      address: '10.0.0.3:50051',
      host: '10.0.0.3',
      port: 50051,
    });
  });

  it('publishes only changes: reordered identical answers over many intervals give one update', async () => {
    const { dns, start } = await setup({
      [name]: { A: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'] },
    });
    const log = logUpdates(start());
    await eventually(() => dns.queries.length >= 5, 5_000, 'five resolutions');
    expect(log.updates.map((u) => u.addresses)).toEqual([
      ['10.0.0.1:50051', '10.0.0.2:50051', '10.0.0.3:50051', '10.0.0.4:50051'],
    ]);
  });

  it('A+AAAA (the default) unites both families, brackets IPv6, and tolerates a family with no records', async () => {
    const { dns, start } = await setup({ [name]: { A: ['10.0.0.1'], AAAA: ['fd00::1'] } });
    const discovery = start({ type: undefined });
    const log = logUpdates(discovery);
    await log.waitFor(['10.0.0.1:50051', '[fd00::1]:50051']);
    expect(log.updates[0]!.update.endpoints[1]!.host).toBe('fd00::1');

    dns.state.zones[name] = { AAAA: ['fd00::2'] };
    await log.waitFor(['[fd00::2]:50051']);
  });

  it('AAAA asks for IPv6 only', async () => {
    const { dns, start } = await setup({ [name]: { A: ['10.0.0.1'], AAAA: ['::1'] } });
    const log = logUpdates(start({ type: 'AAAA' }));
    await log.waitFor(['[::1]:50051']);
    expect(new Set(dns.queries.map((q) => q.type))).toEqual(new Set(['AAAA']));
  });

  it('SRV takes ports from the records and resolves each target', async () => {
    const srv = `_grpc._tcp.${name}`;
    const { dns, errors, start } = await setup({
      [srv]: {
        SRV: [
          { target: `pod-a.${name}`, port: 8080 },
          { target: `pod-b.${name}`, port: 9090 },
        ],
      },
      [`pod-a.${name}`]: { A: ['10.0.0.1'] },
      [`pod-b.${name}`]: { A: ['10.0.0.2'], AAAA: ['fd00::2'] },
    });
    const log = logUpdates(start({ name: srv, port: undefined, type: 'SRV' }));
    await log.waitFor(['10.0.0.1:8080', '10.0.0.2:9090', '[fd00::2]:9090']);

    // A target that vanished between the SRV and A queries is a pod gone: dropped, no error.
    dns.state.zones[srv] = {
      SRV: [...dns.state.zones[srv]!.SRV!, { target: `gone.${name}`, port: 1 }],
    };
    dns.state.zones[`pod-a.${name}`] = { A: ['10.0.0.9'] };
    await log.waitFor(['10.0.0.2:9090', '10.0.0.9:8080', '[fd00::2]:9090']);
    expect(errors).toEqual([]);
  });

  it('keeps the last good set while lookups fail (SERVFAIL, NXDOMAIN), reports them, and recovers', async () => {
    const { dns, errors, start } = await setup({ [name]: { A: ['10.0.0.1'] } });
    const log = logUpdates(start());
    await log.waitFor(['10.0.0.1:50051']);

    dns.state.failWith = 'SERVFAIL';
    await eventually(() => errors.length >= 2, 5_000, 'two SERVFAIL reports');
    dns.state.failWith = 'NXDOMAIN';
    const reported = errors.length;
    await eventually(() => errors.length >= reported + 2, 5_000, 'two NXDOMAIN reports');
    expect(log.updates).toHaveLength(1);
    expect(errors[0]!.message).toMatch(
      /^dns A\+AAAA lookup of api\.prod\.svc\.cluster\.local failed: .*SERVFAIL.*; keeping the last good set$/,
    );
    expect(errors.at(-1)!.message).toMatch(/ENOTFOUND/);

    dns.state.zones[name] = { A: ['10.0.0.2'] };
    dns.state.failWith = undefined;
    await log.waitFor(['10.0.0.2:50051']);
    expect(log.updates).toHaveLength(2);
  });

  it('a name that never resolves publishes nothing and says why', async () => {
    const { errors, start } = await setup({});
    const log = logUpdates(start());
    await eventually(() => errors.length >= 1, 5_000, 'an error');
    expect(log.updates).toEqual([]);
    expect(errors[0]!.message).toContain(name);
  });

  it('refresh re-resolves at once, and a burst of refreshes costs one lookup', async () => {
    const { dns, errors, start } = await setup({ [name]: { A: ['10.0.0.1'] } });
    const discovery = start({ intervalMs: 60_000, minRefreshIntervalMs: 200 });
    const log = logUpdates(discovery);
    await log.waitFor(['10.0.0.1:50051']);
    // Let the rate limit window of the first lookup pass, so the refresh is not deferred.
    await new Promise((r) => setTimeout(r, 250));

    dns.state.zones[name] = { A: ['10.0.0.2'] };
    const queriesBefore = dns.queries.length;
    const refreshedAt = performance.now();
    for (let i = 0; i < 50; i++) discovery.refresh('connect ECONNREFUSED 10.0.0.1:50051');
    const { at } = await log.waitFor(['10.0.0.2:50051']);
    expect(at - refreshedAt).toBeLessThan(150);
    // A+AAAA is two queries per resolution; 50 refreshes made exactly one resolution.
    await new Promise((r) => setTimeout(r, 400));
    expect(dns.queries.length - queriesBefore).toBe(2);

    // Within the rate limit window a refresh is deferred to the window's end, not dropped.
    discovery.refresh('first');
    await eventually(() => dns.queries.length === queriesBefore + 4, 1_000, 'the first refresh');
    const firstAt = dns.queries.at(-1)!.at;
    dns.state.failWith = 'SERVFAIL';
    discovery.refresh('again');
    await eventually(() => errors.length === 1, 2_000, 'the deferred re-resolution');
    expect(dns.queries.at(-1)!.at - firstAt).toBeGreaterThan(150);
    expect(errors[0]!.message).toContain('(re-resolving because: again)');
    expect(log.latest()).toEqual(['10.0.0.2:50051']);
  });

  it('close stops resolving and calls no listener afterwards', async () => {
    const { dns, start } = await setup({ [name]: { A: ['10.0.0.1'] } });
    const discovery = start({ intervalMs: 50 });
    const log = logUpdates(discovery);
    await log.waitFor(['10.0.0.1:50051']);
    await discovery.close();
    const queries = dns.queries.length;
    dns.state.zones[name] = { A: ['10.0.0.2'] };
    await new Promise((r) => setTimeout(r, 200));
    expect(dns.queries.length).toBe(queries);
    expect(log.updates).toHaveLength(1);
  });

  it('rejects a port with SRV and a missing port with A', () => {
    expect(() => dnsDiscovery({ name, type: 'SRV', port: 1 })).toThrow(
      /SRV records carry the port/,
    );
    expect(() => dnsDiscovery({ name, type: 'A' })).toThrow(/"port" is required for A records/);
  });
});
