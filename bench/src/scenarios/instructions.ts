import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  callgrindAvailable,
  callgrindLaunch,
  instructionCounter,
  removeCallgrindOutput,
} from '../callgrind.js';
import type { CountedRequest } from '../hosts/middleware-client.js';
import {
  chosenVariants,
  type StackHosts,
  startStack,
  withStackEnvironment,
} from '../middleware/stacks.js';
import type { Variant } from '../middleware/variant.js';
import { QUICK_WARM_UP_SCALE, type Row, type Scenario } from '../results.js';
import { withRatios } from '../runner.js';

/**
 * The stacks the goals of issues 3, 4 and 7 are about, with the nice-grpc packages they are
 * compared with; their baselines come along (see `chosenVariants`).
 */
const STACKS = [
  'Switchyard deadline + cancellation',
  'Switchyard call scope alone',
  'Switchyard retry',
  'Switchyard metrics + tracing, SDK',
  'Switchyard metrics + tracing, no SDK',
  'nice-grpc-client-middleware-deadline',
  'nice-grpc-client-middleware-retry',
  'nice-grpc-opentelemetry + nice-grpc-prometheus, SDK',
  'nice-grpc-opentelemetry + nice-grpc-prometheus, no SDK',
];

/**
 * Unary calls one at a time, and 64 at a time. One at a time, client and server strictly
 * alternate, so a stack executes nearly the same instructions window after window. Windows hold
 * several young-generation collections (a scavenge comes every few hundred calls): with 400
 * calls a window held none or one, so the least window could leave a stack's garbage collection
 * out altogether, which flattered the stacks that allocate more. With 64 in flight, how calls
 * batch into event-loop turns and syscalls depends on timing, which valgrind's slowdown changes:
 * its counts scatter more (the ± says by how much).
 */
const CASES: readonly (CountedRequest & { label: string })[] = [
  { label: 'unary, 1 in flight', kind: 'unary', concurrency: 1, calls: 2_000 },
  { label: 'unary, 64 in flight', kind: 'unary', concurrency: 64, calls: 1_280 },
];

/**
 * Windows counted per stack. Interference only ever adds instructions (a major GC, a JIT
 * compilation or deoptimisation landing in a window), so the least of several windows is the
 * stack's steady cost; five leave at least one undisturbed window in the runs seen here.
 */
const REPETITIONS = 5;

/**
 * Calls made uncounted before the first counted window of each case: counts per window still
 * fell by a few percent over the first thousand calls after the warm-up.
 */
const UNCOUNTED_CALLS = 6_400;

/**
 * Each process's least window: the server's and the client's disturbances (each process's own
 * GC and JIT) are independent, so each is taken at its least and the total is their sum.
 */
function leastDisturbed(samples: Record<string, number>[]): Record<string, number> {
  const least = (key: string) => Math.min(...samples.map((sample) => sample[key]!));
  const clientPerMessage = least('clientPerMessage');
  const serverPerMessage = least('serverPerMessage');
  return {
    instructionsPerMessage: clientPerMessage + serverPerMessage,
    clientPerMessage,
    serverPerMessage,
  };
}

/** Two stacks at a time: callgrind's counts do not depend on how busy the cores are. */
const AT_ONCE = 2;

export const middlewareInstructions: Scenario = {
  id: 'instructions',
  title: 'Middleware overhead in instructions (callgrind)',
  async run(settings) {
    // A quick run only proves the path works: one case, one stack and its baseline.
    const cases = settings.quick ? CASES.slice(0, 1) : CASES;
    const method =
      'The same client and server processes as "Middleware overhead", each run under valgrind ' +
      "--tool=callgrind, counting the instructions of each process's main thread: the thread " +
      'where JavaScript — everything the middleware does — runs, with the garbage collection done ' +
      "there. V8's background threads are left out: after warm-up they kept recompiling code " +
      "(TurboFan), 15–50% of a window's instructions, varying 3× between windows of one process " +
      'whatever the stack. Instructions leave out the time other work on the machine takes, which ' +
      'scatters CPU time on this shared 2-core machine by 10–20%. Counting starts after the ' +
      "client's warm-up (a quarter of the CPU-time scenario's) and " +
      `${UNCOUNTED_CALLS.toLocaleString('en')} uncounted calls, and covers exactly ${cases.map((c) => `${c.calls} unary calls, ${c.concurrency} at a time`).join(' or ')}, per call, client and server summed; ` +
      `${settings.quick ? 1 : REPETITIONS} windows, the least shown for the client and the server ` +
      'each: interference only adds instructions (a major GC landing in a window); ± is how far ' +
      'the median window lay above the least. With 64 in flight, how calls batch into event-loop ' +
      "turns and syscalls depends on timing, which valgrind's slowdown changes, so those counts " +
      'scatter more. ' +
      'Instructions leave out the kernel (syscalls, loopback TCP) and what cache misses cost, so ' +
      "they understate the baseline's cost and overstate ratios a little; cost vs baseline divides " +
      'instruction counts.';
    if (!(await callgrindAvailable())) {
      return {
        id: this.id,
        title: this.title,
        method,
        columns: [],
        rows: [],
        notes: ['valgrind is not installed (apt-get install -y valgrind): nothing measured.'],
      };
    }
    const variants = chosenVariants(
      settings.stacks ?? (settings.quick ? STACKS.slice(0, 1) : STACKS),
    );
    const repetitions = settings.quick ? 1 : REPETITIONS;
    const outDir = mkdtempSync(join(tmpdir(), 'switchyard-callgrind-'));
    try {
      return await withStackEnvironment(async () => {
        const rows: Row[] = [];
        const queue = [...variants];
        const measureNext = async (): Promise<void> => {
          const variant = queue.shift();
          if (!variant) return;
          settings.log(`instructions: ${variant.name}`);
          rows.push(...(await measureStack(variant, cases, outDir, repetitions, settings.quick)));
          return measureNext();
        };
        await Promise.all(Array.from({ length: AT_ONCE }, measureNext));
        // Rows in catalog order, as the other tables.
        const ordered = variants.flatMap((variant) =>
          rows.filter((row) => row.peer === variant.name),
        );
        return {
          id: this.id,
          title: this.title,
          method,
          columns: [
            { key: 'instructionsPerMessage', label: 'instructions / msg', digits: 0 },
            { key: 'clientPerMessage', label: 'client', digits: 0 },
            { key: 'serverPerMessage', label: 'server', digits: 0 },
          ],
          ratioLabel: 'cost vs baseline',
          rows: withRatios(ordered, 'instructionsPerMessage', 'higher', { paired: false }),
          notes: [],
        };
      });
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  },
};

/** One stack's rows: its two processes started under callgrind, each case counted. */
async function measureStack(
  variant: Variant,
  cases: readonly (CountedRequest & { label: string })[],
  outDir: string,
  repetitions: number,
  quick: boolean,
): Promise<Row[]> {
  const outFile = (process: string) =>
    join(outDir, `${variant.name.replace(/[^a-z0-9]+/gi, '-')}.${process}`);
  let hosts: StackHosts | undefined;
  try {
    hosts = await startStack(variant, {
      warmUpScale: quick ? QUICK_WARM_UP_SCALE : 0.25,
      launch: (process) => callgrindLaunch(outFile(process)),
    });
    const server = instructionCounter(hosts.server.pid, outFile('server'));
    const client = instructionCounter(hosts.client.pid, outFile('client'));
    const rows: Row[] = [];
    for (const { label, ...request } of cases) {
      const counted = { ...request, calls: quick ? Math.ceil(request.calls / 20) : request.calls };
      // Uncounted first: the case's own code paths get optimised.
      await hosts.client.request({ ...counted, calls: quick ? counted.calls : UNCOUNTED_CALLS });
      const samples: Record<string, number>[] = [];
      for (let repetition = 0; repetition < repetitions; repetition++) {
        await Promise.all([server.start(), client.start()]);
        const { messages } = await hosts.client.request<{ messages: number }>(counted);
        const [serverCount, clientCount] = [await server.read(), await client.read()];
        samples.push({
          instructionsPerMessage: (serverCount + clientCount) / messages,
          clientPerMessage: clientCount / messages,
          serverPerMessage: serverCount / messages,
        });
      }
      rows.push({
        case: label,
        peer: variant.name,
        baseline: variant.baseline === variant.name ? undefined : variant.baseline,
        metrics: leastDisturbed(samples),
        samples,
      });
    }
    return rows;
  } finally {
    await Promise.all([hosts?.server.stop(), hosts?.client.stop()]);
    removeCallgrindOutput(outFile('server'));
    removeCallgrindOutput(outFile('client'));
  }
}
