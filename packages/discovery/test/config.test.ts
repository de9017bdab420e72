import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  createDiscovery,
  type Discovery,
  DiscoveryConfigError,
  parseDiscoveryConfig,
} from '../src/index.js';
import { startDnsServer } from './support/dns-server.js';
import { startFakeKubeApi } from './support/fake-kube-api.js';
import { logUpdates } from './support/updates.js';

/** The `discovery:` section of a proxy.yaml, as the proxy would read it. */
const section = (yaml: string): unknown => (parseYaml(yaml) as { discovery: unknown }).discovery;

describe('parseDiscoveryConfig', () => {
  it('fills in defaults and reads durations with their units', () => {
    expect(
      parseDiscoveryConfig(section('discovery: { type: dns, name: api.local, port: 50051 }')),
    ).toEqual({
      type: 'dns',
      name: 'api.local',
      port: 50051,
      recordType: 'A+AAAA',
    });
    expect(
      parseDiscoveryConfig(
        section(`
discovery:
  type: dns
  name: _grpc._tcp.api.local
  recordType: SRV
  interval: 1.5s
  timeout: 250ms
  minRefreshInterval: 1m
  servers: [10.96.0.10, "[fd00::10]:53", 127.0.0.1:5353]
`),
      ),
    ).toMatchObject({ interval: 1_500, timeout: 250, minRefreshInterval: 60_000 });
    expect(
      parseDiscoveryConfig(
        section('discovery: { type: kubernetes, service: api, port: grpc, watchTimeout: 5m }'),
      ),
    ).toEqual({ type: 'kubernetes', service: 'api', port: 'grpc', watchTimeout: 300_000 });
  });

  it.each([
    [
      'discovery: { type: dns, name: api.local }',
      'proxy.yaml: discovery.port: required for A+AAAA records',
    ],
    [
      'discovery: { type: dns, name: api.local, recordType: SRV, port: 1 }',
      'proxy.yaml: discovery.port: SRV records carry the port; remove it',
    ],
    [
      'discovery: { type: dns, name: api.local, port: 1, interval: 5 }',
      'proxy.yaml: discovery.interval: expected a duration with its unit, e.g. "5s" or "250ms"',
    ],
    [
      'discovery: { type: dns, name: api.local, port: 1, interval: 5 sec }',
      'proxy.yaml: discovery.interval: "5 sec" is not a positive duration like "5s" or "250ms"',
    ],
    [
      'discovery: { type: dns, name: api.local, port: 1, servers: [dns.local] }',
      'proxy.yaml: discovery.servers[0]: "dns.local" is not an IP address or ip:port ([::1]:53 for IPv6)',
    ],
    [
      'discovery: { type: dns, name: api.local, port: 70000 }',
      'proxy.yaml: discovery.port: expected <=65535, received 70000',
    ],
    [
      'discovery: { type: file, path: /etc/endpoints.yaml, intervl: 5s }',
      'proxy.yaml: discovery.intervl: unknown key',
    ],
    [
      'discovery: { type: static, endpoints: [127.0.0.1:1, localhost, { address: "[::1]:2", labels: { zone: 1 } }] }',
      'proxy.yaml: discovery.endpoints[1]: "localhost" is not host:port (write an IPv6 address as [::1]:50051); discovery.endpoints[2].labels.zone: expected string, received 1',
    ],
    [
      'discovery: { type: static, endpoints: [] }',
      'proxy.yaml: discovery.endpoints: needs at least one endpoint',
    ],
    [
      'discovery: { type: kubernetes, service: api, port: [grpc] }',
      'proxy.yaml: discovery.port: expected the Service port name or the pod port number',
    ],
    [
      'discovery: { type: consul, name: api }',
      'proxy.yaml: discovery.type: expected ("static" | "dns" | "file" | "kubernetes"), received "consul"',
    ],
  ])('%s → %s', (yaml, message) => {
    const parse = () => parseDiscoveryConfig(section(yaml), { source: 'proxy.yaml' });
    expect(parse).toThrow(DiscoveryConfigError);
    expect(parse).toThrow(message);
  });
});

describe('createDiscovery', () => {
  let dir: string;
  const discoveries: Discovery[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-discovery-config-'));
  });
  afterEach(async () => {
    for (const discovery of discoveries.splice(0)) await discovery.close();
    await rm(dir, { recursive: true, force: true });
  });
  const start = (yaml: string) => {
    const discovery = createDiscovery(parseDiscoveryConfig(section(yaml)), {
      baseDir: dir,
      onError: (e) => {
        throw e;
      },
    });
    discoveries.push(discovery);
    return logUpdates(discovery);
  };

  it('starts each kind from its config section', async () => {
    await start('discovery: { type: static, endpoints: [127.0.0.1:2, 127.0.0.1:1] }').waitFor([
      '127.0.0.1:1',
      '127.0.0.1:2',
    ]);

    const file = join(dir, 'endpoints.yaml');
    await writeFile(file, 'endpoints: [127.0.0.1:3]');
    await start(`discovery: { type: file, path: ${file}, interval: 1s }`).waitFor(['127.0.0.1:3']);
    // Relative paths are the config file's directory's, whatever the working directory.
    await writeFile(join(dir, 'relative.yaml'), 'endpoints: [127.0.0.1:6]');
    await start('discovery: { type: file, path: relative.yaml }').waitFor(['127.0.0.1:6']);

    const dns = await startDnsServer({ 'api.test': { A: ['127.0.0.4'] } });
    try {
      await start(
        `discovery: { type: dns, name: api.test, port: 50051, recordType: A, servers: ["${dns.server}"] }`,
      ).waitFor(['127.0.0.4:50051']);
    } finally {
      await dns.close();
    }

    const api = await startFakeKubeApi();
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      await writeFile(kubeconfig, api.kubeconfig('prod'));
      api.apply({
        metadata: {
          name: 'api-1',
          namespace: 'prod',
          labels: { 'kubernetes.io/service-name': 'api' },
        },
        addressType: 'IPv4',
        ports: [{ name: 'grpc', port: 8080 }],
        endpoints: [{ addresses: ['127.0.0.5'] }],
      });
      await start(
        'discovery: { type: kubernetes, service: api, port: grpc, kubeconfig: kubeconfig }',
      ).waitFor(['127.0.0.5:8080']);
    } finally {
      for (const discovery of discoveries.splice(0)) await discovery.close();
      await api.close();
    }
  });
});
