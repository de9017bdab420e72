import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, resolveConfig } from '../src/config.js';
import { PROXY_KIT_NODE_FLAGS } from '../src/node-flags.js';
import { CLI } from './support/proxy-process.js';

const run = promisify(execFile);

function file(text: string, name = 'proxy.yaml'): string {
  const path = join(mkdtempSync(join(tmpdir(), 'proxy-kit-config-')), name);
  writeFileSync(path, text);
  return path;
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 10_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

describe('configuration errors name the file, the line and the key', () => {
  const cases: [string, string, RegExp][] = [
    [
      'a duration without its unit',
      'discovery: { type: static, endpoints: [127.0.0.1:1] }\nupstream:\n  keepalive:\n    interval: 5\n',
      /proxy\.yaml:4:15: upstream\.keepalive\.interval: expected a duration with its unit/,
    ],
    [
      'an unknown key',
      'discovery: { type: static, endpoints: [127.0.0.1:1] }\nbalancr: round-robin\n',
      /proxy\.yaml:2:\d+: balancr: unknown key/,
    ],
    [
      'an unknown balancer',
      'balancer: fastest\ndiscovery: { type: static, endpoints: [127.0.0.1:1] }\n',
      /proxy\.yaml:1:11: balancer: expected \("p2c-ewma" \| "p2c-least-request" \| "round-robin"\), received "fastest"/,
    ],
    [
      'a bad endpoint, checked by @switchyard/discovery',
      'discovery: { type: static, endpoints: [127.0.0.1:1, nope] }\n',
      /proxy\.yaml:1:\d+: discovery\.endpoints\[1\]: "nope" is not host:port/,
    ],
    ['no discovery at all', 'listen: 127.0.0.1:4140\n', /discovery: /],
    ['broken YAML', 'listen: [127.0.0.1\n', /proxy\.yaml:2:1: /],
  ];
  for (const [what, text, message] of cases) {
    it(what, () => {
      const path = file(text);
      expect(() => loadConfigFile(path)).toThrow(ConfigError);
      expect(() => loadConfigFile(path)).toThrow(message);
    });
  }

  it('a TLS file that cannot be read', () => {
    const path = file(
      'discovery: { type: static, endpoints: [127.0.0.1:1] }\nupstream: { tls: { ca: missing-ca.pem } }\n',
    );
    expect(() => resolveConfig(loadConfigFile(path))).toThrow(
      /proxy\.yaml: upstream\.tls\.ca: cannot read missing-ca\.pem/,
    );
  });
});

describe('a valid file', () => {
  it('maps to the library options, with defaults and paths relative to the file', () => {
    const path = file(`listen: 0.0.0.0:4140
workers: 3
balancer: p2c-least-request
discovery: { type: file, path: endpoints.yaml, interval: 2s }
upstream:
  connectTimeout: 1s
  keepalive: { interval: 20s, timeout: 2s }
  maxConnectionsPerEndpoint: 2
  maxStreamsPerConnection: 0
admission: { queueCapacity: 100, failfast: 500ms }
outlier: { consecutiveFailures: 5, maxEjectedPercent: 20 }
healthCheck: { service: api, interval: 3s }
shutdown: { grace: 30s }
log: { level: warn }
`);
    const resolved = resolveConfig(loadConfigFile(path));
    expect(resolved.proxy.listen).toEqual({ address: '0.0.0.0:4140' });
    const upstream = resolved.upstreams.default!;
    expect(upstream.options.balancer).toBe('p2c-least-request');
    expect(upstream.discovery).toMatchObject({
      type: 'file',
      path: join(path, '..', 'endpoints.yaml'),
      interval: 2000,
    });
    expect(upstream.options.upstream).toMatchObject({
      connectTimeoutMs: 1000,
      keepaliveIntervalMs: 20_000,
      keepaliveTimeoutMs: 2000,
      maxConnections: 2,
      maxStreamsPerConnection: 0,
    });
    expect(upstream.options.admission).toEqual({ queueCapacity: 100, failfastMs: 500 });
    expect(upstream.options.outlier).toMatchObject({
      consecutiveFailures: 5,
      maxEjectedPercent: 20,
    });
    expect(upstream.options.healthCheck).toMatchObject({ service: 'api', intervalMs: 3000 });
    expect(resolved).toMatchObject({ workers: 3, graceMs: 30_000, logLevel: 'warn' });
  });

  it('maps routes and named upstreams, with their policies', () => {
    const path = file(`discovery: { type: static, endpoints: [127.0.0.1:1] }
upstreams:
  orders:
    discovery: { type: static, endpoints: [127.0.0.1:2, 127.0.0.1:3] }
    balancer: round-robin
routes:
  - name: orders-read
    methods: [shop.v1.Orders/Get*, shop.v1.Orders/List*]
    upstream: orders
    timeout: 2s
    idempotent: true
    retry: { maxAttempts: 3, codes: [UNAVAILABLE, RESOURCE_EXHAUSTED], baseDelay: 10ms }
    hedging: { maxAttempts: 2, delay: 20ms }
    authorization:
      rules:
        - methods: [shop.v1.Orders/*]
          identities: ["spiffe://test/ns/shop/sa/*"]
  - methods: ["**"]
identity: { header: x-client-id }
`);
    const resolved = resolveConfig(loadConfigFile(path));
    expect(Object.keys(resolved.upstreams)).toEqual(['default', 'orders']);
    expect(resolved.upstreams.orders).toMatchObject({
      options: { balancer: 'round-robin' },
      discovery: { type: 'static' },
    });
    const [orders, rest] = resolved.proxy.routes!;
    expect(orders).toMatchObject({
      name: 'orders-read',
      methods: ['shop.v1.Orders/Get*', 'shop.v1.Orders/List*'],
      upstream: 'orders',
      timeoutMs: 2000,
      idempotent: true,
      retry: { maxAttempts: 3, codes: [14, 8], baseDelayMs: 10 },
      hedging: { maxAttempts: 2, delayMs: 20 },
      authorization: { rules: [{ identities: ['spiffe://test/ns/shop/sa/*'] }] },
    });
    expect(rest).toMatchObject({ methods: ['**'], upstream: 'default', idempotent: false });
    expect(resolved.proxy.identity).toEqual({
      identityHeader: 'x-client-id',
      trustedProxies: undefined,
    });
  });
});

describe('routes are checked like the rest of the file', () => {
  const base = 'discovery: { type: static, endpoints: [127.0.0.1:1] }\n';
  const cases: [string, string, RegExp][] = [
    [
      'a route to an upstream that does not exist',
      `${base}routes:\n  - methods: ["**"]\n    upstream: orders\n`,
      /proxy\.yaml:4:15: routes\[0\]\.upstream: no upstream named "orders"/,
    ],
    [
      'retries of a route not declared idempotent',
      `${base}routes:\n  - methods: ["**"]\n    retry: { maxAttempts: 2 }\n`,
      /proxy\.yaml:4:12: routes\[0\]\.retry: retry needs idempotent: true/,
    ],
    [
      'a status code that does not exist',
      `${base}routes:\n  - methods: ["**"]\n    idempotent: true\n    retry: { codes: [UNAVAILABLE, FLAKY] }\n`,
      /proxy\.yaml:5:\d+: routes\[0\]\.retry\.codes\[1\]: "FLAKY" is not a gRPC status name/,
    ],
    [
      'a method that is not package.Service/Method',
      `${base}routes:\n  - methods: [Orders]\n`,
      /proxy\.yaml:3:\d+: routes\[0\]\.methods\[0\]: expected 'package\.Service\/Method'/,
    ],
    [
      'an authorization rule without identities',
      `${base}routes:\n  - methods: ["**"]\n    authorization:\n      rules:\n        - methods: ["**"]\n`,
      /proxy\.yaml:6:\d+: routes\[0\]\.authorization\.rules\[0\]\.identities: is required/,
    ],
  ];
  for (const [what, text, message] of cases) {
    it(what, () => {
      expect(() => loadConfigFile(file(text))).toThrow(message);
    });
  }
});

describe('the command line', () => {
  it('--help prints the usage and exits 0', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('proxy-kit --upstream host:port');
  });

  it('an unknown flag, a bad value or a missing upstream exits 2 with the reason', async () => {
    expect(await cli(['--upstreams', 'x'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("Unknown option '--upstreams'"),
    });
    expect(await cli(['--upstream', '127.0.0.1:1', '--workers', 'many'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--workers: workers:'),
    });
    expect(await cli(['--listen', '127.0.0.1:0'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('give --config or --upstream'),
    });
  });

  it('a config error exits 2 and names the file', async () => {
    const path = file('discovery: { type: dns, name: backends.local }\n');
    const { code, stderr } = await cli(['--config', path]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/proxy\.yaml:1:\d+: discovery\.port: required for A\+AAAA records/);
  });
});

describe('the proxy-kit bin', () => {
  it('runs node with PROXY_KIT_NODE_FLAGS', () => {
    const bin = readFileSync(new URL('../bin/proxy-kit.js', import.meta.url), 'utf8');
    expect(bin.split('\n')[0]).toBe(`#!/usr/bin/env -S node ${PROXY_KIT_NODE_FLAGS.join(' ')}`);
  });
});
