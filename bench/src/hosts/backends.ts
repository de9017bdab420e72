import { createTestServiceImpl, startServer } from '@switchyard/testing';
import { delay } from 'abort-controller-x';
import { serveRequests } from '../processes.js';

/**
 * Backends for the proxy scenarios, in a process of their own so that their CPU is not the
 * bench's: `count` TestService servers (nice-grpc, @switchyard/testing) on 127.0.0.1:0, each
 * counting the unary calls it served so the bench can check that h2load's successes really
 * reached a backend (h2load sees only the HTTP status, never grpc-status), and tell how calls
 * were shared. `slowMs` delays every answer of the first backend.
 */
export interface BackendsConfig {
  count: number;
  slowMs?: number;
}

export interface BackendsReady {
  addresses: string[];
}

const { count, slowMs = 0 }: BackendsConfig = JSON.parse(process.argv[2] ?? '{}');
const served = new Array<number>(count).fill(0);
const servers = await Promise.all(
  served.map((_, index) =>
    startServer({
      backend: `backend-${index}`,
      implementation(backend) {
        const standard = createTestServiceImpl({ backend });
        const extraDelay = index === 0 ? slowMs : 0;
        return {
          ...standard,
          async unary(request, context) {
            if (extraDelay > 0) await delay(context.signal, extraDelay);
            served[index]! += 1;
            return standard.unary(request, context);
          },
        };
      },
    }),
  ),
);

serveRequests<{ op: 'served' }>({ addresses: servers.map((server) => server.address) }, () => [
  ...served,
]);
