import { variantNamed } from '../middleware/catalog.js';
import { serveRequests } from '../processes.js';

// The server of one middleware variant: `middleware-server <variant name>`.
const variant = variantNamed(process.argv[2]!);
await variant.setup?.();
serveRequests({ address: await variant.serve() }, () => undefined);
