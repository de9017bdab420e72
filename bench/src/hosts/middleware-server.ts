import { variantNamed } from '../middleware/catalog.js';
import { cpuMicros, serveRequests } from '../processes.js';

// The server of one middleware variant: `middleware-server <variant name>`. Each request is
// answered with the CPU time (user + system, µs, all threads) the process has used so far.
const variant = variantNamed(process.argv[2]!);
await variant.setup?.();
serveRequests({ address: await variant.serve() }, () => cpuMicros());
