import { closedLoop } from '../load/closed-loop.js';
import { variantNamed } from '../middleware/catalog.js';
import { serveRequests } from '../processes.js';

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
// The first call connects, so that no measurement includes the handshake.
await caller.unary(() => {});
serveRequests<MeasureRequest>({}, ({ kind, concurrency, durationMs }) =>
  closedLoop(caller[kind], concurrency, durationMs),
);
