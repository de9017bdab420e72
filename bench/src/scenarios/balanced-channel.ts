import { fileURLToPath } from 'node:url';
import { Channel, credentials } from '@grpc/grpc-js';
import { createBalancedChannel } from '@switchyard/balanced-channel';
import { TestServiceDefinition } from '@switchyard/testing';
import { createChannel, createClient } from 'nice-grpc';
import type { BackendsReady } from '../hosts/backends.js';
import { type ClosedLoopResult, closedLoop } from '../load/closed-loop.js';
import { UNARY_REQUEST } from '../middleware/variant.js';
import { cpuMicros, type Host, serveRequests, startHost } from '../processes.js';
import type { Row, Scenario } from '../results.js';
import { interleaved, withRatios } from '../runner.js';

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
const SLOW_IN_FLIGHT = 8;
const SERVER_CPU = 1;
const CLIENT_CPU = 0;

/** What the scenario asks of its client host: one closed-loop window on one channel. */
interface Measure {
  peer: string;
  concurrency: number;
  durationMs: number;
}

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
            warmUpScale: settings.quick ? 0.05 : 1,
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

      const slowLabel = `3 backends, one ${SLOW_MS} ms slower, ${SLOW_IN_FLIGHT} in flight`;
      settings.log(`balanced-channel: ${slowLabel}`);
      const slowWindowMs = Math.round(3_000 * settings.timeScale);
      const slowMeasured = await interleaved(SLOW_PEERS, settings, async (peer) => {
        const before = await slow.request<number[]>({ op: 'served' });
        const { rate, p50Ms, p99Ms, errors } = await client.request<ClosedLoopResult>({
          peer: `${peer}, slow`,
          concurrency: SLOW_IN_FLIGHT,
          durationMs: slowWindowMs,
        } satisfies Measure);
        const served = (await slow.request<number[]>({ op: 'served' })).map(
          (count, index) => count - before[index]!,
        );
        const total = served.reduce((sum, count) => sum + count, 0);
        return { rate, p50Ms, p99Ms, errors, slowShare: (served[0]! / total) * 100 };
      });
      for (const peer of SLOW_PEERS) {
        rows.push({ case: slowLabel, peer, ...slowMeasured.get(peer)! });
      }

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
          `Slow-backend rows: ${SLOW_IN_FLIGHT} calls kept in flight for ${slowWindowMs} ms, the first backend ` +
          `answering ${SLOW_MS} ms late; its share is counted by the backends, ${settings.repetitions} ` +
          'repetitions interleaved, medians shown; grpc-js round_robin is a plain grpc-js channel ' +
          'with that service config over the same three addresses.',
        columns: [
          { key: 'cpuUsPerCall', label: 'client CPU µs / call', digits: 1 },
          { key: 'rate', label: 'calls/s', digits: 0 },
          { key: 'p50Ms', label: 'p50 ms', digits: 3 },
          { key: 'p99Ms', label: 'p99 ms', digits: 3 },
          { key: 'slowShare', label: '% to slow backend', digits: 1 },
        ],
        ratioLabel: 'CPU vs nice-grpc',
        rows: withRatios(rows, 'cpuUsPerCall', 'higher'),
        notes: rows
          .filter((row) => (row.metrics.errors ?? 0) > 0)
          .map((row) => `${row.peer}, ${row.case}: ${row.metrics.errors} failed calls (median)`),
      };
    } finally {
      await Promise.all(hosts.map((host) => host.stop()));
    }
  },
};

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
  // Long enough for peak-EWMA's estimates (τ = 10 s) to have learnt the backends' latencies.
  for (const peer of SLOW_PEERS) {
    await repeat(callers[`${peer}, slow`]!, SLOW_IN_FLIGHT, Math.ceil(20_000 * warmUpScale));
  }
  serveRequests<Measure>({}, async ({ peer, concurrency, durationMs }) => {
    const before = cpuMicros();
    const result = await closedLoop(callers[peer]!, concurrency, durationMs);
    return { ...result, cpuUs: cpuMicros() - before };
  });
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
