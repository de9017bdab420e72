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

/** Exactly `calls` calls, `concurrency` at a time; the reply counts their response messages. */
export interface CountedRequest {
  kind: 'unary' | 'serverStream';
  concurrency: number;
  calls: number;
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
serveRequests<MeasureRequest | CountedRequest>({}, async (request) => {
  const { kind, concurrency } = request;
  if ('calls' in request)
    return { messages: await repeat(caller[kind], concurrency, request.calls) };
  const cpuBefore = cpuMicros();
  const result = await closedLoop(caller[kind], concurrency, request.durationMs);
  return { ...result, cpuUs: cpuMicros() - cpuBefore };
});

/** Makes `calls` calls, `concurrency` at a time; resolves to the response messages received. */
async function repeat(
  call: Caller['serverStream'],
  concurrency: number,
  calls: number,
): Promise<number> {
  const never = new AbortController().signal;
  let left = calls;
  let messages = 0;
  const onMessage = () => {
    messages += 1;
  };
  const worker = async () => {
    while (left-- > 0) await call(onMessage, never);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return messages;
}
