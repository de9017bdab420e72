import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { statusName } from '@switchyard/core';
import { createTestClient } from '@switchyard/testing';
import type { ClientError } from 'nice-grpc-common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminAddress, adminJson } from './support/admin.js';
import { type BackendProcess, startBackendProcess } from './support/backend-process.js';
import { startProxyProcess } from './support/proxy-process.js';

// Load protection of the binary, set in its config file: calls beyond a concurrency limit and
// request messages beyond a size fail at once with RESOURCE_EXHAUSTED; the rest are served.

let backend: BackendProcess;
let config: string;

beforeAll(async () => {
  backend = await startBackendProcess('limited');
  config = join(mkdtempSync(join(tmpdir(), 'proxy-kit-limits-')), 'proxy.yaml');
  writeFileSync(
    config,
    `listen: { address: 127.0.0.1:0, maxConcurrentCalls: 6, maxRequestMessageBytes: 1000 }
workers: 1
discovery: { type: static, endpoints: [${backend.address}] }
routes:
  - { name: streams, methods: ["switchyard.testing.v1.TestService/ServerStream"], maxConcurrentCalls: 2 }
  - { name: rest, methods: ["**"] }
admin: 127.0.0.1:0
accessLog: { sampleRate: 0, slowerThan: 250ms }
`,
  );
});

afterAll(async () => {
  await backend.stop();
});

const outcome = (call: Promise<unknown>) =>
  call.then(
    () => 'OK',
    (error: ClientError) => `${statusName(error.code)}: ${error.details}`,
  );

describe('load protection', () => {
  it('turns away calls beyond the proxy’s and a route’s concurrency limits, and oversize requests', async () => {
    const proxy = await startProxyProcess(['--config', config]);
    const { client, close } = createTestClient(proxy.address);
    try {
      const admin = await adminAddress(proxy);
      // 10 slow calls at once against the proxy's limit of 6.
      const unary = await Promise.all(
        Array.from({ length: 10 }, () => outcome(client.unary({ delayMs: 300 }))),
      );
      expect(unary.filter((o) => o === 'OK')).toHaveLength(6);
      expect(unary.filter((o) => o !== 'OK')).toEqual(
        Array(4).fill('RESOURCE_EXHAUSTED: the proxy has 6 calls in flight, its limit'),
      );
      // 4 streams at once on a route limited to 2.
      const drain = async () => {
        for await (const _ of client.serverStream({ responseCount: 2, delayMs: 150 })) void _;
      };
      const streams = await Promise.all(Array.from({ length: 4 }, () => outcome(drain())));
      expect(streams.filter((o) => o === 'OK')).toHaveLength(2);
      expect(streams.filter((o) => o !== 'OK')).toEqual(
        Array(2).fill('RESOURCE_EXHAUSTED: route streams has 2 calls in flight, its limit'),
      );
      // A request message over 1,000 bytes, and one under.
      expect(await outcome(client.unary({ payload: 'x'.repeat(2_000) }))).toMatch(
        /^RESOURCE_EXHAUSTED: request message of 20\d\d bytes exceeds the proxy's limit of 1000$/,
      );
      expect(await outcome(client.unary({ payload: 'x'.repeat(500) }))).toBe('OK');
      // The refusals are counted per route, and the admin and access log came from the file.
      const routes = await adminJson<{
        routes: { name: string; statuses: Record<string, number> }[];
      }>(admin, '/routes');
      expect(routes.routes.find((r) => r.name === 'streams')!.statuses).toEqual({
        OK: 2,
        RESOURCE_EXHAUSTED: 2,
      });
      const logged = proxy
        .output()
        .split('\n')
        .filter((line) => line.includes('"msg":"call"'))
        .map((line) => JSON.parse(line) as { status: string; durationMs: number });
      // Sample 0: only failures and calls slower than 250 ms (the 6 unary calls of 300 ms and
      // the 2 streams of 2 × 150 ms) get a line.
      expect(logged.filter((l) => l.status === 'OK').every((l) => l.durationMs > 250)).toBe(true);
      expect(logged.filter((l) => l.status === 'OK').length).toBe(8);
      expect(logged.filter((l) => l.status === 'RESOURCE_EXHAUSTED')).toHaveLength(7);
    } finally {
      close();
      await proxy.stop();
    }
  });
});
