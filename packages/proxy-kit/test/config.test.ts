import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, resolveConfig } from '../src/config.js';
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
      /proxy\.yaml:1:11: balancer: Invalid option/,
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
    expect(resolved.proxy.balancer).toBe('p2c-least-request');
    expect(resolved.discovery).toMatchObject({
      type: 'file',
      path: join(path, '..', 'endpoints.yaml'),
      interval: 2000,
    });
    expect(resolved.proxy.upstream).toMatchObject({
      connectTimeoutMs: 1000,
      keepaliveIntervalMs: 20_000,
      keepaliveTimeoutMs: 2000,
      maxConnections: 2,
      maxStreamsPerConnection: 0,
    });
    expect(resolved.proxy.admission).toEqual({ queueCapacity: 100, failfastMs: 500 });
    expect(resolved.proxy.outlier).toMatchObject({ consecutiveFailures: 5, maxEjectedPercent: 20 });
    expect(resolved.healthCheck).toMatchObject({ service: 'api', intervalMs: 3000 });
    expect(resolved).toMatchObject({ workers: 3, graceMs: 30_000, logLevel: 'warn' });
  });
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
