import { closedLoop } from '../load/closed-loop.js';
import { variantNamed } from '../middleware/catalog.js';
import type { Caller } from '../middleware/variant.js';
import { cpuMicros, serveRequests } from '../processes.js';

/** A measurement the bench asks of a middleware client host. */
export interface MeasureRequest {
  kind: 'unary' | 'serverStream';
  concurrency: number;
  durationMs: number;
}

/** Calls made before the first measurement; scaled down in a quick run. */
// Enough for CPU per call to level off: a fresh process still spends twice the CPU per call
// after its first couple of thousand calls.
const WARM_UP = [
  { kind: 'unary', concurrency: 1, calls: 4_000 },
  { kind: 'unary', concurrency: 16, calls: 16_000 },
  { kind: 'serverStream', concurrency: 4, calls: 100 },
  { kind: 'unary', concurrency: 1, calls: 2_000 },
] as const;

// The client of one middleware variant:
// `middleware-client <variant name> <server address> <warm-up scale>`.
const variant = variantNamed(process.argv[2]!);
await variant.setup?.();
const caller = variant.connect(process.argv[3]!);
// A fresh process keeps getting faster for thousands of calls while V8 optimises its hot paths;
// every stack makes the same calls first, counted rather than timed, so that each starts its
// measurements in the same state however busy the machine was while it warmed up.
const scale = Number(process.argv[4] ?? 1);
for (const { kind, concurrency, calls } of WARM_UP) {
  await repeat(caller[kind], concurrency, Math.ceil(calls * scale));
}
serveRequests<MeasureRequest>({}, async ({ kind, concurrency, durationMs }) => {
  const cpuBefore = cpuMicros();
  const result = await closedLoop(caller[kind], concurrency, durationMs);
  return { ...result, cpuUs: cpuMicros() - cpuBefore };
});

async function repeat(
  call: Caller['serverStream'],
  concurrency: number,
  calls: number,
): Promise<void> {
  const never = new AbortController().signal;
  let left = calls;
  const worker = async () => {
    while (left-- > 0) await call(() => {}, never);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
