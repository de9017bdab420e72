import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { statusName } from '@switchyard/core';
import { createTestClient } from '@switchyard/testing';
import { ClientError } from 'nice-grpc-common';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type BackendProcess, startBackendProcess } from './support/backend-process.js';
import { type ProxyProcess, residentMemory, startProxyProcess } from './support/proxy-process.js';

// The proxy binary under the attacks of the HTTP/2 CVEs and their kin, each run by a process of
// its own while a healthy client makes 200 calls a second through the same proxy: the proxy must
// stay alive, the healthy client must be served (≥ 99% OK; its p99 is reported), memory must stay bounded
// (RSS ≤ idle + 128 MiB) and every descriptor the attack took must be given back. A fresh proxy for
// each attack: a heap grown by one (V8 keeps what it grew) must not be charged to the next.

const ATTACKER = fileURLToPath(new URL('./support/attacker.mjs', import.meta.url));
const ATTACK_MS = 3_000;
const RATE = 200;
/** What an attack may add to the proxy's RSS while it lasts. */
const MEMORY_BOUND = 128 * 2 ** 20;

let backend: BackendProcess;
let streams: BackendProcess;
let config: string;
let proxy: ProxyProcess;
let idleRss = 0;
let idleDescriptors = 0;

function descriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

beforeAll(async () => {
  backend = await startBackendProcess('attacked');
  // The never-reading client's streams go to a backend of their own: the backend that produces
  // 40 streams of 64 MiB stalls its own event loop for a while, which is the backend's cost, not
  // the proxy's. What the proxy must show is that it keeps the healthy calls apart (an upstream
  // connection's other streams never wait for a stalled reader; see streaming.test.ts).
  streams = await startBackendProcess('streams');
  const dir = mkdtempSync(join(tmpdir(), 'proxy-kit-attacks-'));
  config = join(dir, 'proxy.yaml');
  // The binary's defaults, but a 2 s handshake timeout so the slow-handshake attack ends in time.
  writeFileSync(
    config,
    `listen: { address: 127.0.0.1:0, handshakeTimeout: 2s }
workers: 1
discovery: { type: static, endpoints: [${backend.address}] }
upstreams:
  streams: { discovery: { type: static, endpoints: [${streams.address}] } }
routes:
  - { methods: [switchyard.testing.v1.TestService/ServerStream], upstream: streams }
  - { methods: ["**"] }
log: { level: info }
`,
  );
});

beforeEach(async () => {
  proxy = await startProxyProcess(['--config', config]);
  // Warm: the hot paths compiled, then a connection of the healthy client's kind opened and gone.
  await healthyLoad(1_000);
  idleRss = residentMemory(proxy.child.pid!).rss;
  idleDescriptors = descriptors(proxy.child.pid!);
}, 30_000);

afterEach(async () => {
  await proxy?.stop();
});

afterAll(async () => {
  await backend?.stop();
  await streams?.stop();
});

/** Calls at RATE per second for `ms` through the proxy, on a connection of their own. */
async function healthyLoad(ms: number): Promise<{ ok: number; failed: string[]; p99: number }> {
  const { client, close } = createTestClient(proxy.address);
  const latencies: number[] = [];
  const failed: string[] = [];
  const calls: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; performance.now() - started < ms; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const begun = performance.now();
    calls.push(
      client.unary({ payload: 'healthy' }).then(
        () => {
          latencies.push(performance.now() - begun);
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
  close();
  latencies.sort((a, b) => a - b);
  return {
    ok: latencies.length,
    failed,
    p99: latencies[Math.floor(latencies.length * 0.99)] ?? Number.POSITIVE_INFINITY,
  };
}

/**
 * Runs one attack for ATTACK_MS. The attacker runs at the lowest CPU priority: on a machine of
 * two cores its busy loops would otherwise take a core from the proxy and the healthy client —
 * a cost of sharing the machine, not of the attack, whose traffic the proxy still gets in full.
 */
function attack(kind: string): Promise<Record<string, unknown>> {
  return promisify(execFile)(
    'nice',
    ['-n', '19', process.execPath, ATTACKER, kind, proxy.address, String(ATTACK_MS)],
    { timeout: ATTACK_MS + 20_000, maxBuffer: 1 << 20 },
  ).then(({ stdout }) => JSON.parse(stdout));
}

const ATTACKS: [string, string][] = [
  ['continuation-empty', 'CONTINUATION flood of empty frames (CVE-2024-27316)'],
  ['continuation-1byte', 'CONTINUATION flood of 1-byte frames'],
  ['rapid-reset', 'rapid reset on one connection (CVE-2023-44487)'],
  ['rapid-reset-reconnecting', 'rapid reset, reconnecting'],
  ['ping-flood', 'PING flood from a peer that never reads the ACKs'],
  ['settings-flood', 'SETTINGS flood from a peer that never reads the ACKs'],
  ['never-read', 'a client that never reads (window 0, huge responses)'],
  ['slow-handshakes', '2,000 slow handshakes'],
  ['idle-connections', '10,000 idle connections opened and dropped'],
];

describe('attacks on the proxy binary, with a healthy client measured through it', () => {
  for (const [kind, title] of ATTACKS) {
    it(
      title,
      async () => {
        const pid = proxy.child.pid!;
        let peak = 0;
        const sampler = setInterval(() => {
          peak = Math.max(peak, residentMemory(pid).rss);
        }, 100);
        try {
          const [report, healthy] = await Promise.all([attack(kind), healthyLoad(ATTACK_MS)]);
          expect(proxy.child.exitCode, 'the proxy is alive').toBeNull();
          const total = healthy.ok + healthy.failed.length;
          expect(
            healthy.ok / total,
            `healthy calls served: ${healthy.failed.slice(0, 3)}`,
          ).toBeGreaterThanOrEqual(0.99);
          // The healthy client's p99 is a timing figure: reported here, judged in bench/ (timing
          // goals never fail unit tests on a shared machine; the goal is p99 < 50 ms).
          console.info(
            `${kind}: healthy p99 ${healthy.p99.toFixed(1)} ms; ${JSON.stringify(report)}`,
          );
          // Bounded, not flat: before issue 19 a CONTINUATION flood grew RSS by 1 GB in 10 s.
          // The PING and SETTINGS floods still add up to ~80 MB (V8's heap growing at their
          // allocation rate; seen 152–155 MB over 76 idle), an open item of issue 19.
          expect(
            peak,
            `peak RSS ${peak >> 20} MiB vs idle ${idleRss >> 20} MiB`,
          ).toBeLessThanOrEqual(idleRss + MEMORY_BOUND);
          // Every descriptor the attack took is given back once its connections are gone.
          await expect
            .poll(() => descriptors(pid), { timeout: 10_000, interval: 200 })
            .toBeLessThanOrEqual(idleDescriptors);
          expect(report.connections).toBeGreaterThan(0);
        } finally {
          clearInterval(sampler);
        }
      },
      ATTACK_MS + 40_000,
    );
  }
});
