import type { BackendsReady } from '../hosts/backends.js';
import { proxiedRun } from '../load/proxied-run.js';
import { proxyKit, type StartedPeer, startPeers, stopPeers } from '../peers/index.js';
import { sampleRss, startHost } from '../processes.js';
import type { Row, Scenario } from '../results.js';
import { interleaved, withRatios } from '../runner.js';

const ENDPOINTS = [1, 10, 100];
const CONNECTIONS = [1, 100, 1_000];
const RATE = 1_000;
const CASE = `proxy-kit p2c-ewma, ${RATE.toLocaleString('en')} req/s`;

export const proxyScale: Scenario = {
  id: 'scale',
  title: 'proxy-kit at scale: endpoints × client connections',
  async run(settings) {
    const probe = proxyKit.probe();
    const title = this.title;
    const method =
      `proxy-kit (p2c-ewma, one core) in front of 1, 10 or 100 nice-grpc TestService backends (all in ` +
      `one process), driven by h2load at ${RATE.toLocaleString('en')} req/s in all (open loop) over 1, 100 ` +
      `or 1,000 client connections, ${settings.repetitions} repetitions interleaved across the cells, ` +
      'medians shown. The same rate everywhere, so CPU per call shows what endpoints and ' +
      'connections cost; RSS is the largest VmRSS sampled during the run. Latency is left out: ' +
      'h2load paces each connection on its own timer, so a thousand connections at one call per ' +
      "second each arrive in bursts, and the queueing that makes is the generator's, not the " +
      "proxy's (it shows direct to a backend too).";
    const columns = [
      { key: 'cpuSPer10k', label: 'CPU s / 10k calls', digits: 2 },
      { key: 'rssMb', label: 'RSS MB', digits: 0 },
      { key: 'rate', label: 'req/s', digits: 0 },
      { key: 'errors', label: 'errors', digits: 0 },
    ];
    if ('absent' in probe) {
      const rows = ENDPOINTS.flatMap((endpoints) =>
        CONNECTIONS.map(
          (connections): Row => ({
            case: CASE,
            peer: cellName({ endpoints, connections }),
            metrics: {},
            absent: probe.absent,
          }),
        ),
      );
      return { id: this.id, title, method, columns, rows, notes: [] };
    }

    const backends = await startHost<BackendsReady>('backends', [
      JSON.stringify({ count: Math.max(...ENDPOINTS) }),
    ]);
    const proxies: StartedPeer[] = [];
    try {
      for (const endpoints of ENDPOINTS) {
        proxies.push(
          ...(await startPeers(
            [[proxyKit, 'p2c-ewma']],
            backends.ready.addresses.slice(0, endpoints),
            () => `${endpoints}`,
          )),
        );
      }
      const cells = ENDPOINTS.flatMap((endpoints, index) =>
        CONNECTIONS.map((connections) => ({
          endpoints,
          connections,
          proxy: proxies[index]!.running!,
        })),
      );
      const durationMs = 3_000 * settings.timeScale;
      const warmUpMs = 1_000 * settings.timeScale;
      settings.log(`scale: ${cells.length} cells`);
      const measured = await interleaved(cells, settings, async ({ connections, proxy }) => {
        const rss = sampleRss(proxy.pid);
        try {
          const { served: _, ...metrics } = await proxiedRun(backends, proxy.pid, {
            target: proxy.target,
            connections,
            streams: Math.max(4, Math.ceil(64 / connections)),
            durationMs,
            // h2load opens every connection before it measures; on a busy machine a thousand
            // handshakes take seconds, and a measurement starting before them sees none succeed.
            warmUpMs: Math.max(warmUpMs, connections * 3),
            rps: RATE,
          });
          return { ...metrics, rssMb: rss.largestMb() };
        } finally {
          rss.stop();
        }
      });
      // One case; every cell is compared with the smallest, 1 endpoint and 1 connection.
      const rows = cells.map(
        (cell): Row => ({
          case: CASE,
          peer: cellName(cell),
          baseline: cell === cells[0] ? undefined : cellName(cells[0]!),
          ...measured.get(cell)!,
        }),
      );
      withRatios(rows, 'cpuSPer10k', 'higher');
      return {
        id: this.id,
        title,
        method,
        columns,
        ratioLabel: 'CPU per call vs 1 × 1',
        rows,
        notes: [],
      };
    } finally {
      await stopPeers(proxies);
      await backends.stop();
    }
  },
};

function cellName({ endpoints, connections }: { endpoints: number; connections: number }): string {
  const plural = (count: number, noun: string) =>
    `${count.toLocaleString('en')} ${noun}${count > 1 ? 's' : ''}`;
  return `${plural(endpoints, 'endpoint')} × ${plural(connections, 'client connection')}`;
}
