import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Channel, credentials } from '@grpc/grpc-js';
import { createBalancedChannel } from '@switchyard/balanced-channel';
import { TestServiceDefinition } from '@switchyard/testing';
import { createChannel, createClient } from 'nice-grpc';
import {
  callgrindAvailable,
  callgrindLaunch,
  instructionCounter,
  removeCallgrindOutput,
} from '../callgrind.js';
import type { BackendsReady } from '../hosts/backends.js';
import { type ClosedLoopResult, closedLoop } from '../load/closed-loop.js';
import { UNARY_REQUEST } from '../middleware/variant.js';
import { cpuMicros, type Host, serveRequests, startHost } from '../processes.js';
import { QUICK_WARM_UP_SCALE, type Row, type Scenario, type Settings } from '../results.js';
import { interleaved, withRatios } from '../runner.js';
import { summariseLatencies } from '../stats.js';

// One file, two roles: the scenario (run by the bench) and its client host (forked by the
// scenario from this same file), so that the channels' CPU is a process's own, as the middleware
// scenario measures its stacks.

const BASELINE = 'nice-grpc channel, 1 endpoint';
const BALANCED_ONE = 'balanced channel p2c-ewma, 1 endpoint';
const BALANCED = 'balanced channel p2c-ewma, 3 endpoints';
const ROUND_ROBIN = 'grpc-js round_robin, 3 endpoints';
const CPU_PEERS = [BASELINE, BALANCED_ONE, BALANCED];
const SLOW_PEERS = [BALANCED, ROUND_ROBIN];
const CPU_CASES = [1, 64];
const SLOW_MS = 50;
/** The balancing scenario's load (issue 8's figures were taken so): an open loop, not N in flight. */
const SLOW_RATE = 500;
const SERVER_CPU = 1;
const CLIENT_CPU = 0;

/**
 * What the scenario asks of its client host: one window on one channel, closed loop
 * (`concurrency` calls kept in flight) or open loop (`rate` calls a second, whatever their latency).
 */
type Measure = { peer: string } & (
  | { concurrency: number; durationMs: number }
  | { rate: number; durationMs: number }
  | { concurrency: number; calls: number }
);

export const balancedChannel: Scenario = {
  id: 'balanced-channel',
  title: 'Balanced channel: client-side balancing vs a plain nice-grpc channel',
  async run(settings) {
    const hosts: Host<unknown>[] = [];
    const start = async <Ready>(script: string, args: string[], cpu: number) => {
      const host = await startHost<Ready>(script, args, { cpu });
      hosts.push(host);
      return host;
    };
    try {
      const even = await start<BackendsReady>(
        'backends',
        [JSON.stringify({ count: 3 })],
        SERVER_CPU,
      );
      const slow = await start<BackendsReady>(
        'backends',
        [JSON.stringify({ count: 3, slowMs: SLOW_MS })],
        SERVER_CPU,
      );
      const client = await start<object>(
        '../scenarios/balanced-channel',
        [
          JSON.stringify({
            even: even.ready.addresses,
            slow: slow.ready.addresses,
            warmUpScale: settings.quick ? QUICK_WARM_UP_SCALE : 1,
          }),
        ],
        CLIENT_CPU,
      );
      const rows: Row[] = [];

      // Paired like the middleware scenario: five short windows per peer, interleaved.
      const repeated = { ...settings, repetitions: settings.quick ? 1 : 5 };
      const cpuWindowMs = Math.round(600 * settings.timeScale);
      for (const concurrency of CPU_CASES) {
        const label = `unary, ${concurrency} in flight`;
        settings.log(`balanced-channel: ${label}`);
        const measured = await interleaved(CPU_PEERS, repeated, async (peer) => {
          const { cpuUs, messages, rate, p50Ms, p99Ms, errors } = await client.request<
            ClosedLoopResult & { cpuUs: number }
          >({ peer, concurrency, durationMs: cpuWindowMs } satisfies Measure);
          return { cpuUsPerCall: cpuUs / messages, rate, p50Ms, p99Ms, errors };
        });
        for (const peer of CPU_PEERS) {
          rows.push({
            case: label,
            peer,
            baseline: peer === BASELINE ? undefined : BASELINE,
            ...measured.get(peer)!,
          });
        }
      }

      rows.push(...(await countInstructions(even.ready.addresses, settings)));

      const slowLabel = `3 backends, one ${SLOW_MS} ms slower, ${SLOW_RATE} calls/s`;
      settings.log(`balanced-channel: ${slowLabel}`);
      const slowWindowMs = Math.round(3_000 * settings.timeScale);
      const slowWarmUpMs = Math.round(1_000 * settings.timeScale);
      // As h2load's warm-up in the balancing scenario: the balancer learns, uncounted.
      const warmUp = (peer: string) =>
        client.request({ peer, rate: SLOW_RATE, durationMs: slowWarmUpMs } satisfies Measure);
      const window = async (peer: string) => {
        const { rate, p50Ms, p99Ms, errors } = await client.request<ClosedLoopResult>({
          peer,
          rate: SLOW_RATE,
          durationMs: slowWindowMs,
        } satisfies Measure);
        return { rate, p50Ms, p99Ms, errors };
      };
      const slowMeasured = await interleaved(SLOW_PEERS, settings, async (peer) => {
        await warmUp(`${peer}, slow`);
        const before = await slow.request<number[]>({ op: 'served' });
        const metrics = await window(`${peer}, slow`);
        const served = (await slow.request<number[]>({ op: 'served' })).map(
          (count, index) => count - before[index]!,
        );
        const total = served.reduce((sum, count) => sum + count, 0);
        return { ...metrics, slowShare: (served[0]! / total) * 100 };
      });
      for (const peer of SLOW_PEERS) {
        rows.push({ case: slowLabel, peer, ...slowMeasured.get(peer)! });
      }
      // The same open loop over three backends alike: the latency the client process itself
      // allows (its event-loop pauses), below which no balancing can bring the rows above.
      const floorLabel = `3 backends alike, ${SLOW_RATE} calls/s`;
      settings.log(`balanced-channel: ${floorLabel}`);
      const floor = await interleaved([BALANCED], settings, async (peer) => {
        await warmUp(peer);
        return window(peer);
      });
      rows.push({ case: floorLabel, peer: BALANCED, ...floor.get(BALANCED)! });

      return {
        id: this.id,
        title: this.title,
        method:
          'One client process (pinned to one core) holding every channel, the backends (nice-grpc ' +
          'TestService servers, one process) pinned to the other. CPU rows: a closed loop of unary ' +
          `calls for ${cpuWindowMs} ms per window, ${repeated.repetitions} windows per channel interleaved, ` +
          "after the same warm-up calls on each; CPU µs / call is the client process's CPU time " +
          '(user + system, getrusage) per call — the channel is all that differs, the servers do the ' +
          'same work for each. The balanced channel over 1 endpoint isolates the resolver and ' +
          'policy; over 3 it also pays for three connections, which batch fewer calls per write. ' +
          `Slow-backend rows: ${SLOW_RATE} calls/s (open loop) for ${slowWindowMs} ms after ${slowWarmUpMs} ms of ` +
          `warm-up, the first backend answering ${SLOW_MS} ms late, as in the balancing scenario; its ` +
          `share of the window's calls is counted by the backends, ${settings.repetitions} ` +
          'repetitions interleaved, medians shown; grpc-js round_robin is a plain grpc-js channel ' +
          'with that service config over the same three addresses. The row of three backends ' +
          'alike is the same open loop with none slow: the p99 the client process allows. ' +
          'Instruction rows: the same ' +
          'client again, under valgrind --tool=callgrind, counting its main thread (where ' +
          'JavaScript runs; see "Middleware overhead in instructions") over ' +
          `${INSTRUCTION_CASES.map((c) => `${c.calls} calls ${c.concurrency} at a time`).join(' or ')}, after ` +
          `${UNCOUNTED_CALLS.toLocaleString('en')} uncounted ones, the least of ${INSTRUCTION_WINDOWS} windows: ` +
          "a figure the machine's other work does not move, where CPU time on this shared machine " +
          'scatters by 10–20%.',
        columns: [
          { key: 'cpuUsPerCall', label: 'client CPU µs / call', digits: 1 },
          { key: 'instructionsPerCall', label: 'client instructions / call', digits: 0 },
          { key: 'rate', label: 'calls/s', digits: 0 },
          { key: 'p50Ms', label: 'p50 ms', digits: 3 },
          { key: 'p99Ms', label: 'p99 ms', digits: 3 },
          { key: 'slowShare', label: '% to slow backend', digits: 1 },
        ],
        ratioLabel: 'cost vs nice-grpc',
        rows: withRatios(
          withRatios(rows, 'cpuUsPerCall', 'higher'),
          'instructionsPerCall',
          'higher',
          {
            paired: false,
          },
        ),
        notes: rows
          .filter((row) => (row.metrics.errors ?? 0) > 0)
          .map((row) => `${row.peer}, ${row.case}: ${row.metrics.errors} failed calls (median)`),
      };
    } finally {
      await Promise.all(hosts.map((host) => host.stop()));
    }
  },
};

/** Instruction windows as the instructions scenario counts them (see there for why these sizes). */
const INSTRUCTION_CASES = [
  { concurrency: 1, calls: 2_000 },
  { concurrency: 64, calls: 1_280 },
];
/**
 * Uncounted calls before each channel's first window: fewer than the instructions scenario's
 * 6,400, since the host has already made a quarter of the CPU rows' warm-up on every channel
 * (under valgrind each call is ~50× slower, and three channels share one host).
 */
const UNCOUNTED_CALLS = 2_000;
const INSTRUCTION_WINDOWS = 5;

/**
 * The CPU rows' channels counted in instructions: a second client host under callgrind, each
 * channel's windows in turn, the least window kept (interference only adds instructions).
 */
async function countInstructions(addresses: string[], settings: Settings): Promise<Row[]> {
  if (!(await callgrindAvailable())) return [];
  const outDir = mkdtempSync(join(tmpdir(), 'switchyard-callgrind-'));
  const outFile = join(outDir, 'balanced-channel.client');
  let host: Host<object> | undefined;
  try {
    host = await startHost<object>(
      '../scenarios/balanced-channel',
      [
        JSON.stringify({
          even: addresses,
          slow: addresses,
          warmUpScale: settings.quick ? QUICK_WARM_UP_SCALE : 0.25,
        }),
      ],
      { cpu: CLIENT_CPU, launch: callgrindLaunch(outFile) },
    );
    const counter = instructionCounter(host.pid, outFile);
    const rows: Row[] = [];
    for (const { concurrency, calls: fullCalls } of INSTRUCTION_CASES.slice(
      0,
      settings.quick ? 1 : 2,
    )) {
      const label = `unary, ${concurrency} in flight, instructions`;
      settings.log(`balanced-channel: ${label}`);
      const calls = settings.quick ? Math.ceil(fullCalls / 20) : fullCalls;
      for (const peer of CPU_PEERS) {
        await host.request({ peer, concurrency, calls: settings.quick ? calls : UNCOUNTED_CALLS });
        const samples: Record<string, number>[] = [];
        for (let window = 0; window < (settings.quick ? 1 : INSTRUCTION_WINDOWS); window++) {
          await counter.start();
          await host.request({ peer, concurrency, calls } satisfies Measure);
          samples.push({ instructionsPerCall: (await counter.read()) / calls });
        }
        rows.push({
          case: label,
          peer,
          baseline: peer === BASELINE ? undefined : BASELINE,
          metrics: { instructionsPerCall: Math.min(...samples.map((s) => s.instructionsPerCall!)) },
          samples,
        });
      }
    }
    return rows;
  } finally {
    await host?.stop();
    removeCallgrindOutput(outFile);
    rmSync(outDir, { recursive: true, force: true });
  }
}

/** The client host: every channel the scenario compares, warmed up, measured on request. */
async function serveAsClientHost(config: { even: string[]; slow: string[]; warmUpScale: number }) {
  const { even, slow, warmUpScale } = config;
  const roundRobin = (addresses: readonly string[]) =>
    new Channel(`ipv4:${addresses.join(',')}`, credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    });
  const channels: Record<string, Channel> = {
    [BASELINE]: createChannel(even[0]!),
    [BALANCED_ONE]: createBalancedChannel([even[1]!]),
    [BALANCED]: createBalancedChannel(even),
    [`${BALANCED}, slow`]: createBalancedChannel(slow),
    [`${ROUND_ROBIN}, slow`]: roundRobin(slow),
  };
  const callers = Object.fromEntries(
    Object.entries(channels).map(([peer, channel]) => {
      const client = createClient(TestServiceDefinition, channel);
      return [
        peer,
        async (onMessage: () => void) => {
          await client.unary(UNARY_REQUEST);
          onMessage();
        },
      ];
    }),
  );
  // The same calls first on every channel, counted rather than timed (see middleware-client.ts).
  for (const peer of CPU_PEERS) {
    for (const [concurrency, calls] of [
      [1, 4_000],
      [16, 16_000],
      [64, 4_000],
    ] as const) {
      await repeat(callers[peer]!, concurrency, Math.ceil(calls * warmUpScale));
    }
  }
  for (const peer of SLOW_PEERS) await repeat(callers[`${peer}, slow`]!, 4, 200);
  serveRequests<Measure>({}, async (request) => {
    const call = callers[request.peer]!;
    if ('calls' in request) {
      await repeat(call, request.concurrency, request.calls);
      return { messages: request.calls };
    }
    const before = cpuMicros();
    const result =
      'rate' in request
        ? await openLoop(call, request.rate, request.durationMs)
        : await closedLoop(call, request.concurrency, request.durationMs);
    return { ...result, cpuUs: cpuMicros() - before };
  });
}

/**
 * Starts `rate` calls a second for `durationMs`, each on time whatever the others' latency (an
 * open loop, as h2load's `--rps`: a slow endpoint cannot slow the load down), and waits for them.
 */
async function openLoop(
  call: (onMessage: () => void) => Promise<void>,
  rate: number,
  durationMs: number,
): Promise<ClosedLoopResult> {
  const latencies: number[] = [];
  let errors = 0;
  const calls: Promise<void>[] = [];
  const started = performance.now();
  for (let sent = 0; sent < (rate * durationMs) / 1000; sent++) {
    const wait = started + (sent * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    const begin = performance.now();
    calls.push(
      call(() => {}).then(
        () => void latencies.push(performance.now() - begin),
        () => void errors++,
      ),
    );
  }
  await Promise.all(calls);
  const elapsedS = (performance.now() - started) / 1000;
  return {
    rate: latencies.length / elapsedS,
    messages: latencies.length,
    errors,
    ...summariseLatencies(latencies),
  };
}

async function repeat(
  call: (onMessage: () => void) => Promise<void>,
  concurrency: number,
  calls: number,
) {
  let left = calls;
  const worker = async () => {
    while (left-- > 0) await call(() => {});
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

if (process.send && process.argv[1] === fileURLToPath(import.meta.url)) {
  await serveAsClientHost(JSON.parse(process.argv[2]!));
}
