import { closedLoop } from '../load/closed-loop.js';
import { variantNamed } from '../middleware/catalog.js';
import { cpuMicros, serveRequests } from '../processes.js';

/** A measurement the bench asks of a middleware client host. */
export interface MeasureRequest {
  kind: 'unary' | 'serverStream';
  concurrency: number;
  durationMs: number;
}

// The client of one middleware variant: `middleware-client <variant name> <server address>`.
const variant = variantNamed(process.argv[2]!);
await variant.setup?.();
const caller = variant.connect(process.argv[3]!);
// Connects, then warms up: a fresh process compiles its hot paths during its first calls, which
// would otherwise land in the first (or, in a quick run, the only) measurement.
await caller.unary(() => {});
await closedLoop(caller.unary, 16, 300);
await closedLoop(caller.serverStream, 4, 300);
serveRequests<MeasureRequest>({}, async ({ kind, concurrency, durationMs }) => {
  const cpuBefore = cpuMicros();
  const result = await closedLoop(caller[kind], concurrency, durationMs);
  return { ...result, cpuUs: cpuMicros() - cpuBefore };
});
