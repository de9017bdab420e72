import type { BackendsReady } from '../hosts/backends.js';
import { runH2load } from '../load/h2load.js';
import { proxiedRun } from '../load/proxied-run.js';
import { proxyPeers, type StartedPeer, startPeers, stopPeers } from '../peers/index.js';
import { peakRssMb, startHost } from '../processes.js';
import type { Row, Scenario } from '../results.js';
import { interleaved, withRatios } from '../runner.js';

const DIRECT = 'direct (no proxy)';
/** Closed loop: connections × streams in flight. */
const CONNECTIONS = 8;
const STREAMS = 16;
const FIXED_RATES = [1_000, 5_000];
const RATE_CONNECTIONS = 10;

export const proxyThroughput: Scenario = {
  id: 'proxy',
  title: 'Proxy: throughput, latency, CPU and memory',
  async run(settings) {
    const durationMs = 4_000 * settings.timeScale;
    const warmUpMs = 1_000 * settings.timeScale;
    const cases = [
      {
        label: `closed loop, ${CONNECTIONS} connections × ${STREAMS} streams`,
        rps: undefined,
        ratioOn: 'rate',
      },
      ...FIXED_RATES.map((rps) => ({
        label: `${rps.toLocaleString('en')} req/s`,
        rps,
        ratioOn: 'p99Ms',
      })),
    ];
    const rows: Row[] = [];
    const absent = new Map<string, string>();
    for (const { label, rps, ratioOn } of cases) {
      settings.log(`proxy: ${label}`);
      // Each case starts from fresh processes: a backend and proxies that have just been
      // through another case carry its heap and connections into this one, differently for each
      // peer (proxy-kit keeps one multiplexed backend connection, HAProxy one per client
      // connection, nginx a pool, direct runs reconnect every time).
      const backends = await startHost<BackendsReady>('backends', [JSON.stringify({ count: 1 })]);
      const upstream = backends.ready.addresses[0]!;
      let peers: StartedPeer[] = [];
      try {
        peers = [
          { label: DIRECT },
          ...(await startPeers(
            proxyPeers.map((peer) => [peer, peer.policies[0]!] as const),
            [upstream],
            (peer) => peer.name,
          )),
        ];
        const present = peers.filter((peer) => !peer.absent);
        // Fresh processes are cold (proxy-kit and the backend compile their hot paths as they
        // run): a closed-loop second through each, not measured, before the repetitions.
        for (const peer of present) {
          await runH2load({
            target: peer.running?.target ?? upstream,
            connections: CONNECTIONS,
            streams: STREAMS,
            durationMs: warmUpMs,
            warmUpMs: 0,
          });
        }
        const measured = await interleaved(present, settings, async (peer) => {
          const { served: _, ...metrics } = await proxiedRun(backends, peer.running?.pid, {
            target: peer.running?.target ?? upstream,
            connections: rps ? RATE_CONNECTIONS : CONNECTIONS,
            streams: rps ? 32 : STREAMS,
            durationMs,
            warmUpMs,
            rps,
            staggerConnections: true,
          });
          return metrics;
        });
        const caseRows = peers.map((peer): Row => {
          const row: Row = {
            case: label,
            peer: peer.label,
            baseline: peer.label === DIRECT ? undefined : DIRECT,
            metrics: {},
            ...measured.get(peer),
            absent: peer.absent,
          };
          // Peak RSS on the closed-loop rows: the case that needs the most memory.
          if (rps === undefined && peer.running) {
            row.metrics = { ...row.metrics, peakRssMb: peakRssMb(peer.running.pid) };
          }
          return row;
        });
        for (const peer of peers) if (peer.absent) absent.set(peer.label, peer.absent);
        rows.push(...withRatios(caseRows, ratioOn, ratioOn === 'rate' ? 'lower' : 'higher'));
      } finally {
        await stopPeers(peers);
        await backends.stop();
      }
    }
    const direct = rows.filter((row) => row.peer === DIRECT);
    const proxied = Math.max(
      ...rows.filter((row) => row.peer !== DIRECT).map((row) => row.metrics.rate ?? 0),
    );
    // Closed-loop runs only: at a fixed rate h2load idles between its timer ticks.
    const capacity = Math.min(
      ...rows
        .filter((row) => row.case === cases[0]!.label && !row.absent)
        .map((row) => row.metrics.generatorCapacity ?? Number.POSITIVE_INFINITY),
    );
    return {
      id: this.id,
      title: this.title,
      method:
        `h2load (one thread) posts one framed TestRequest per call to the Unary method of a nice-grpc ` +
        `TestService backend (@switchyard/testing, in a process of its own): directly, or through each ` +
        `proxy on one core (proxy-kit --workers 1, nginx one worker process, HAProxy nbthread 1). ` +
        `Closed loop: ${CONNECTIONS} connections × ${STREAMS} concurrent streams; fixed rates: open loop ` +
        `over ${RATE_CONNECTIONS} connections (h2load --rps), opened 1 ms apart so that h2load's ` +
        'per-connection request timers are out of phase — opened together, they fire together and ' +
        `1,000 req/s arrives as 100 bursts of ${RATE_CONNECTIONS} simultaneous calls (5,000 req/s, ` +
        'whose timers tick every 2 ms, still arrives 5 calls at a time every millisecond). ' +
        `${durationMs / 1000} s measured after ${warmUpMs / 1000} s of warm-up, ` +
        `${settings.repetitions} repetitions interleaved, medians shown. Each case starts from fresh ` +
        'processes (backend and every proxy), so none inherits the heap or the backend connections ' +
        `another case left behind, warmed by ${warmUpMs / 1000} s of closed loop through each before ` +
        'the repetitions. Every process shares the same cores, ' +
        `so a proxy's CPU is taken from the backend and h2load: CPU s per 10k calls is the proxy's ` +
        `own cost (utime + stime of its process, /proc/<pid>/stat); peak RSS is VmHWM after the ` +
        'closed-loop case. Cost vs direct: rate ratio for the closed loop, p99 ratio at fixed rates, each ' +
        "repetition's against direct's in the same repetition, median shown; ± is the scatter " +
        'of those ratios (median absolute deviation, relative).',
      columns: [
        { key: 'rate', label: 'req/s', digits: 0 },
        { key: 'p50Ms', label: 'p50 ms', digits: 2 },
        { key: 'p99Ms', label: 'p99 ms', digits: 2 },
        { key: 'maxMs', label: 'max ms', digits: 1 },
        { key: 'cpuSPer10k', label: 'CPU s / 10k calls', digits: 2 },
        { key: 'peakRssMb', label: 'peak RSS MB', digits: 0 },
        { key: 'errors', label: 'errors', digits: 0 },
      ],
      ratioLabel: 'cost vs direct',
      rows,
      notes: [
        `Load generator: in the closed-loop runs h2load used at most one CPU-second per ` +
          `${Math.round(capacity).toLocaleString('en')} calls, so on a core of its own it could drive that ` +
          'many calls per second; ' +
          `direct to the backend it reached ${Math.round(direct[0]?.metrics.rate ?? 0).toLocaleString('en')} req/s, ` +
          `the fastest proxied run ${Math.round(proxied).toLocaleString('en')} req/s.`,
        ...[...absent].map(([peer, why]) => `${peer} absent: ${why}`),
      ],
    };
  },
};
