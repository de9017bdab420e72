import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Status } from '@switchyard/core';
import { createTestClient } from '@switchyard/testing';
import type { ClientError } from 'nice-grpc-common';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BackendProcess, startBackendProcess } from './support/backend-process.js';
import { startProxyProcess } from './support/proxy-process.js';

// A backend that hangs without closing its connections (SIGSTOP) is found by HTTP/2 PING
// keepalive within interval + timeout and taken out; calls fail over to the others.

const KEEPALIVE_INTERVAL_MS = 500;
const KEEPALIVE_TIMEOUT_MS = 500;

let backends: BackendProcess[];

beforeAll(async () => {
  backends = await Promise.all(['b0', 'b1', 'b2'].map((name) => startBackendProcess(name)));
});

afterAll(async () => {
  await Promise.all(backends.map((b) => b.stop()));
});

it('detects a SIGSTOPped backend under load within keepalive interval + timeout, then routes around it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'proxy-kit-hung-'));
  const config = join(dir, 'proxy.yaml');
  writeFileSync(
    config,
    `listen: 127.0.0.1:0
workers: 1
discovery:
  type: static
  endpoints: [${backends.map((b) => b.address).join(', ')}]
upstream:
  keepalive: { interval: ${KEEPALIVE_INTERVAL_MS}ms, timeout: ${KEEPALIVE_TIMEOUT_MS}ms }
`,
  );
  const proxy = await startProxyProcess(['--config', config]);
  const { client, close } = createTestClient(proxy.address);
  const calls: { started: number; ended: number; ok: boolean; code?: number }[] = [];
  let stoppedAt = 0;
  let running = true;
  const load = Array.from({ length: 8 }, async () => {
    while (running) {
      const started = Date.now();
      try {
        await client.unary({ payload: 'x' }, { signal: AbortSignal.timeout(5_000) });
        calls.push({ started, ended: Date.now(), ok: true });
      } catch (error) {
        calls.push({ started, ended: Date.now(), ok: false, code: (error as ClientError).code });
      }
    }
  });
  try {
    await sleep(800);
    stoppedAt = Date.now();
    backends[1]!.child.kill('SIGSTOP');
    await sleep(3_000);
    running = false;
    await Promise.all(load);
  } finally {
    close();
    backends[1]!.child.kill('SIGCONT');
    await proxy.stop();
  }

  // Detected within interval + timeout (plus scheduling slack on a busy machine).
  const detection = proxy
    .output()
    .split('\n')
    .filter((line) => line.includes('did not answer a keepalive PING'))
    // The binary logs ISO times.
    .map((line) => Date.parse((JSON.parse(line) as { time: string }).time))[0];
  expect(detection).toBeDefined();
  expect(detection! - stoppedAt).toBeLessThan(KEEPALIVE_INTERVAL_MS + KEEPALIVE_TIMEOUT_MS + 500);

  // Only calls already sent to the hung backend failed, with UNAVAILABLE when it was dropped…
  const failed = calls.filter((c) => !c.ok);
  console.info(
    `SIGSTOP detected after ${detection! - stoppedAt} ms; ${failed.length} of ${calls.length} calls failed`,
  );
  expect(failed.length).toBeLessThanOrEqual(8);
  for (const call of failed) expect(call.code).toBe(Status.UNAVAILABLE);
  // …and every call started after detection succeeded, on the other backends.
  const after = calls.filter((c) => c.started > detection!);
  expect(after.length).toBeGreaterThan(50);
  expect(after.every((c) => c.ok)).toBe(true);
}, 30_000);
