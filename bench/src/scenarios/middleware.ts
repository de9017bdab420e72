import type { MeasureRequest } from '../hosts/middleware-client.js';
import type { ClosedLoopResult } from '../load/closed-loop.js';
import {
  chosenVariants,
  type StackHosts,
  startStack,
  withStackEnvironment,
} from '../middleware/stacks.js';
import { STREAM_MESSAGES, type Variant } from '../middleware/variant.js';
import { QUICK_WARM_UP_SCALE, type Row, type Scenario } from '../results.js';
import { interleaved, withRatios } from '../runner.js';

const CASES: readonly (Omit<MeasureRequest, 'durationMs'> & { label: string })[] = [
  { label: 'unary, 1 in flight', kind: 'unary', concurrency: 1 },
  { label: 'unary, 64 in flight', kind: 'unary', concurrency: 64 },
  {
    label: `stream of ${STREAM_MESSAGES.toLocaleString('en')}, 1 in flight`,
    kind: 'serverStream',
    concurrency: 1,
  },
  {
    label: `stream of ${STREAM_MESSAGES.toLocaleString('en')}, 64 in flight`,
    kind: 'serverStream',
    concurrency: 64,
  },
];

const SERVER_CPU = 1;
const CLIENT_CPU = 0;

/** How many hosts start at once: each imports grpc-js and friends, and the machine has 2 cores. */
const STARTING_AT_ONCE = 4;

export const middlewareOverhead: Scenario = {
  id: 'middleware',
  title: 'Middleware overhead',
  async run(settings) {
    const variants = chosenVariants(settings.stacks);
    return withStackEnvironment(async (sink) => {
      const hosts = new Map<Variant, StackHosts>();
      try {
        const queue = [...variants];
        const startNext = async (): Promise<void> => {
          const variant = queue.shift();
          if (!variant) return;
          hosts.set(
            variant,
            await startStack(variant, {
              // Server and client on a core each, the same two for every stack.
              serverCpu: SERVER_CPU,
              clientCpu: CLIENT_CPU,
              warmUpScale: settings.quick ? QUICK_WARM_UP_SCALE : 1,
            }),
          );
          return startNext();
        };
        await Promise.all(Array.from({ length: STARTING_AT_ONCE }, startNext));
        // Both processes' CPU time per response message: the stack's cost, which a busy shared
        // machine disturbs far less than it disturbs rates and latencies.
        const measure = async (variant: Variant, request: MeasureRequest) => {
          const { server, client } = hosts.get(variant)!;
          const serverBefore = await server.request<number>({});
          const { cpuUs, messages, ...result } = await client.request<
            ClosedLoopResult & { cpuUs: number }
          >(request);
          const serverUs = (await server.request<number>({})) - serverBefore;
          return { ...result, cpuUsPerMessage: (cpuUs + serverUs) / messages };
        };

        // More, shorter repetitions than the other scenarios: finer interleaving of 19 stacks
        // against the slow spells of a shared machine, in the same time.
        const repeated = { ...settings, repetitions: settings.quick ? 1 : 5 };
        const durationMs = Math.round(600 * settings.timeScale);
        const rows: Row[] = [];
        for (const { label, ...request } of CASES) {
          settings.log(`middleware: ${label}`);
          const measured = await interleaved(variants, repeated, (variant) =>
            measure(variant, { ...request, durationMs }),
          );
          for (const variant of variants) {
            rows.push({
              case: label,
              peer: variant.name,
              baseline: variant.baseline === variant.name ? undefined : variant.baseline,
              ...measured.get(variant)!,
            });
          }
        }
        const failing = rows.filter((row) => (row.metrics.errors ?? 0) > 0);
        return {
          id: this.id,
          title: this.title,
          method:
            `Closed loop: N calls kept in flight for ${durationMs} ms per repetition, ${repeated.repetitions} ` +
            'repetitions interleaved across the stacks, medians shown. Each stack has its own server ' +
            'process and its own client process (warmed up by the same few thousand calls), both on ' +
            '127.0.0.1, the server pinned to one core and the client to the other. The rate counts response messages (calls, for unary): unary calls still ' +
            'running when the window closes are awaited and counted, streams are cancelled. CPU µs / ' +
            'msg is the CPU time (user + system, getrusage) both processes used per response message ' +
            "(per call, for unary) — the stack's own cost, which other work on a shared machine " +
            'disturbs far less than rates and latencies. Cost vs baseline divides it by the ' +
            "baseline's in the same repetition, and shows the median of those ratios: 1.05× is 5% " +
            'more CPU per call; ± is their median absolute deviation, relative — a ratio closer to 1 ' +
            'than that is within the noise.',
          columns: [
            { key: 'cpuUsPerMessage', label: 'CPU µs / msg', digits: 1 },
            { key: 'rate', label: 'msgs/s', digits: 0 },
            { key: 'p50Ms', label: 'p50 ms', digits: 3 },
            { key: 'p99Ms', label: 'p99 ms', digits: 3 },
          ],
          ratioLabel: 'cost vs baseline',
          rows: withRatios(rows, 'cpuUsPerMessage', 'higher'),
          notes: [
            `The SDK stacks exported to a local OTLP/HTTP sink: ${Object.entries(sink.received())
              .map(
                ([path, { requests, bytes }]) =>
                  `${path} ${requests} requests, ${(bytes / 2 ** 20).toFixed(1)} MiB`,
              )
              .join(
                '; ',
              )}. "no SDK": no OpenTelemetry SDK registered, so tracing and Switchyard metrics run on the ` +
              "API's no-op tracer and meter, while nice-grpc-prometheus still records into prom-client; the " +
              'like-for-like comparison is the SDK one.',
            ...failing.map(
              (row) => `${row.peer}, ${row.case}: ${row.metrics.errors} failed calls (median)`,
            ),
          ],
        };
      } finally {
        await Promise.all(
          [...hosts.values()].flatMap(({ server, client }) => [server.stop(), client.stop()]),
        );
      }
    });
  },
};
