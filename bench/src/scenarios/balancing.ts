import type { BackendsReady } from '../hosts/backends.js';
import { proxiedRun } from '../load/proxied-run.js';
import { proxyPeers, type StartedPeer, startPeers, stopPeers } from '../peers/index.js';
import { startHost } from '../processes.js';
import type { Row, Scenario } from '../results.js';
import { interleaved } from '../runner.js';

const BACKENDS = 3;
const SLOW_MS = 50;
const RATE = 500;
const CONNECTIONS = 10;

export const balancingQuality: Scenario = {
  id: 'balancing',
  title: 'Balancing quality: one of 3 backends 50 ms slower',
  async run(settings) {
    const backends = await startHost<BackendsReady>('backends', [
      JSON.stringify({ count: BACKENDS, slowMs: SLOW_MS }),
    ]);
    let peers: StartedPeer[] = [];
    try {
      peers = await startPeers(
        proxyPeers.flatMap((peer) => peer.policies.map((policy) => [peer, policy] as const)),
        backends.ready.addresses,
        (peer, policy) => `${peer.name} ${policy}`,
      );
      const durationMs = 3_000 * settings.timeScale;
      const warmUpMs = 1_000 * settings.timeScale;
      const label = `${RATE} req/s over ${CONNECTIONS} connections`;
      settings.log(`balancing: ${label}`);
      const measured = await interleaved(
        peers.filter((peer) => !peer.absent),
        settings,
        async (peer) => {
          const { served, rate, p50Ms, p99Ms, maxMs, errors } = await proxiedRun(
            backends,
            peer.running!.pid,
            {
              target: peer.running!.target,
              connections: CONNECTIONS,
              streams: 32,
              durationMs,
              warmUpMs,
              rps: RATE,
            },
          );
          const total = served.reduce((sum, count) => sum + count, 0);
          return { rate, p50Ms, p99Ms, maxMs, errors, slowShare: (served[0]! / total) * 100 };
        },
      );
      const rows = peers.map(
        (peer): Row => ({
          case: label,
          peer: peer.label,
          metrics: {},
          ...measured.get(peer),
          absent: peer.absent,
        }),
      );
      return {
        id: this.id,
        title: this.title,
        method:
          `Three nice-grpc TestService backends, the first answering every call ${SLOW_MS} ms late; each proxy ` +
          `with each of its balancing policies in front of them, on one core. h2load sends ${RATE} req/s ` +
          `(open loop) over ${CONNECTIONS} connections for ${durationMs / 1000} s after ${warmUpMs / 1000} s of ` +
          'warm-up; the share of calls the slow backend served (warm-up included) is counted by the ' +
          `backends themselves; ${settings.repetitions} repetitions interleaved, medians shown. An even ` +
          'split gives the slow backend 33%; a latency-aware balancer much less.',
        columns: [
          { key: 'slowShare', label: '% to slow backend', digits: 1 },
          { key: 'p50Ms', label: 'p50 ms', digits: 2 },
          { key: 'p99Ms', label: 'p99 ms', digits: 2 },
          { key: 'maxMs', label: 'max ms', digits: 1 },
          { key: 'errors', label: 'errors', digits: 0 },
        ],
        rows,
        notes: peers
          .filter((peer) => peer.absent)
          .map((peer) => `${peer.label} absent: ${peer.absent}`),
      };
    } finally {
      await stopPeers(peers);
      await backends.stop();
    }
  },
};
