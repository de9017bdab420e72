import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { statusName } from '@switchyard/core';
import { createTestClient } from '@switchyard/testing';
import { ClientError } from 'nice-grpc-common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminAddress, adminJson, type EndpointsBody } from './support/admin.js';
import { type BackendProcess, startBackendProcess } from './support/backend-process.js';
import { startProxyProcess } from './support/proxy-process.js';

// A configuration reloaded under load, as an operator (or a ConfigMap) changes it: written in
// place of the file (a rename, as editors and kubelet do), some changes also signalled with
// SIGHUP. No call may fail; the invalid one is rejected with its file:line:key message.

const RATE = 200;
const LOAD_MS = 10_000;

let backends: BackendProcess[];
let dir: string;

beforeAll(async () => {
  backends = await Promise.all(['r1', 'r2', 'r3'].map((name) => startBackendProcess(name)));
  dir = mkdtempSync(join(tmpdir(), 'proxy-kit-reload-'));
});

afterAll(async () => {
  await Promise.all(backends.map((b) => b.stop()));
});

function configText(endpoints: string[], extra = ''): string {
  return `listen: 127.0.0.1:0
workers: 1
balancer: p2c-ewma
discovery: { type: static, endpoints: [${endpoints.join(', ')}] }
${extra}`;
}

describe('reload', () => {
  it('under 200 calls/s for 10 s, 5 changes (one invalid): no call fails, the last valid one is in force', async () => {
    const file = join(dir, 'proxy.yaml');
    const write = (text: string) => {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };
    const [r1, r2, r3] = backends.map((b) => b.address) as [string, string, string];
    write(configText([r1]));
    const proxy = await startProxyProcess(['--config', file, '--admin', '127.0.0.1:0']);
    const admin = await adminAddress(proxy);
    const { client, close } = createTestClient(proxy.address);
    const failed: string[] = [];
    const servedBy: { at: number; backend: string }[] = [];
    const started = performance.now();
    const load = (async () => {
      const calls: Promise<void>[] = [];
      for (let i = 0; performance.now() - started < LOAD_MS; i++) {
        const wait = started + (i * 1000) / RATE - performance.now();
        if (wait > 0) await sleep(wait);
        calls.push(
          client.unary({ payload: 'reload' }).then(
            ({ backend }) => {
              servedBy.push({ at: performance.now() - started, backend });
            },
            (error: unknown) => {
              failed.push(
                error instanceof ClientError
                  ? `${statusName(error.code)} ${error.details}`
                  : String(error),
              );
            },
          ),
        );
      }
      await Promise.all(calls);
    })();
    const at = (ms: number) => sleep(Math.max(0, started + ms - performance.now()));
    try {
      await at(1_500);
      write(configText([r1, r2])); // more endpoints
      await at(3_000);
      write(
        configText(
          [r1, r2],
          `routes:
  - { name: test, methods: ["switchyard.testing.v1.TestService/*"], timeout: 5s, idempotent: true, retry: { maxAttempts: 2 } }
`,
        ),
      ); // a route with a timeout and retries
      proxy.child.kill('SIGHUP');
      await at(4_500);
      write(configText([r2, r3]).replace('balancer: p2c-ewma', 'balancer: fastest')); // invalid
      await at(5_200);
      const rejected = await adminJson<{ lastReload: { ok: boolean; error: string } }>(
        admin,
        '/config',
      );
      expect(rejected.lastReload.ok).toBe(false);
      expect(rejected.lastReload.error).toMatch(/proxy\.yaml:3:\d+: balancer: /);
      await at(6_000);
      write(configText([r2, r3], 'admission: { queueCapacity: 500, failfast: 2s }\n'));
      await at(7_500);
      write(configText([r3]).replace('balancer: p2c-ewma', 'balancer: round-robin')); // the last
      proxy.child.kill('SIGHUP');
      await load;
    } finally {
      close();
    }
    try {
      expect(failed).toEqual([]);
      expect(servedBy.length).toBeGreaterThan(RATE * (LOAD_MS / 1000) * 0.9);
      // The invalid config was rejected with the message a bad file gets at start-up.
      const rejection = proxy
        .output()
        .split('\n')
        .find((line) => line.includes('configuration rejected'));
      expect(rejection).toMatch(/proxy\.yaml:3:\d+: balancer: /);
      // The last valid one is in force: only r3, round-robin, and the route gone.
      const endpoints = await adminJson<EndpointsBody>(admin, '/endpoints');
      expect(endpoints.upstreams).toHaveLength(1);
      expect(endpoints.upstreams[0]!.balancer).toBe('round-robin');
      expect(endpoints.upstreams[0]!.endpoints.map((e) => e.address)).toEqual([r3]);
      const shown = await adminJson<{
        config: { balancer: string; routes?: unknown };
        lastReload: { ok: boolean };
      }>(admin, '/config');
      expect(shown.config.balancer).toBe('round-robin');
      expect(shown.config.routes).toBeUndefined();
      expect(shown.lastReload.ok).toBe(true);
      // Calls moved with the changes: r2 served after the second, only r3 after the last.
      expect(servedBy.some(({ at, backend }) => at > 2_000 && at < 4_500 && backend === 'r2')).toBe(
        true,
      );
      const late = servedBy.filter(({ at }) => at > 8_500);
      expect(late.length).toBeGreaterThan(100);
      expect(new Set(late.map(({ backend }) => backend))).toEqual(new Set(['r3']));
      const reloads = proxy.output().match(/"msg":"configuration reloaded"/g) ?? [];
      expect(reloads.length).toBeGreaterThanOrEqual(4);
    } finally {
      await proxy.stop();
    }
  }, 40_000);

  it('with 2 workers, SIGHUP to the primary reloads each worker, and the primary stays', async () => {
    const file = join(dir, 'workers.yaml');
    writeFileSync(file, configText([backends[0]!.address]));
    const proxy = await startProxyProcess(['--config', file, '--workers', '2']);
    const { client, close } = createTestClient(proxy.address);
    try {
      // Both workers serve before the signal (each logs its own listening line).
      const both = performance.now() + 10_000;
      while ((proxy.output().match(/"msg":"listening"/g) ?? []).length < 2) {
        if (performance.now() > both)
          throw new Error(`2 workers did not start:\n${proxy.output()}`);
        await sleep(50);
      }
      writeFileSync(file, configText([backends[1]!.address]));
      proxy.child.kill('SIGHUP');
      const deadline = performance.now() + 10_000;
      while (
        new Set(
          proxy
            .output()
            .split('\n')
            .filter((line) => line.includes('"msg":"configuration reloaded"'))
            .map((line) => (JSON.parse(line) as { pid: number }).pid),
        ).size < 2
      ) {
        if (performance.now() > deadline)
          throw new Error(`no reload in each worker:\n${proxy.output()}`);
        await sleep(50);
      }
      expect(proxy.child.exitCode).toBeNull();
      const { backend } = await client.unary({});
      expect(backend).toBe(backends[1]!.backend);
    } finally {
      close();
      await proxy.stop();
    }
  }, 30_000);
});
