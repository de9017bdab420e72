import type { BackendsReady } from '../hosts/backends.js';
import { cpuSeconds, type Host } from '../processes.js';
import { type H2loadOptions, runH2load } from './h2load.js';

/** One h2load run through a proxy (or direct), with what the backends and the proxy saw. */
export interface ProxiedRun {
  /** Successes per second after the warm-up (h2load's, less any no backend served). */
  rate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * Failed requests, plus h2load successes that no backend served (a proxy answering HTTP 200
   * with an error grpc-status, which h2load cannot see).
   */
  errors: number;
  /** Calls each backend served during the run, warm-up included. */
  served: number[];
  /** Proxy CPU seconds per 10,000 calls served, warm-up included; NaN for direct runs. */
  cpuSPer10k: number;
  /** Calls per CPU-second h2load used: the rate it could drive with a core to itself. */
  generatorCapacity: number;
}

/** Runs h2load against `options.target`, reading the proxy's CPU and the backends' counts around it. */
export async function proxiedRun(
  backends: Host<BackendsReady>,
  proxyPid: number | undefined,
  options: H2loadOptions,
): Promise<ProxiedRun> {
  const servedBefore = await backends.request<number[]>({ op: 'served' });
  const cpuBefore = proxyPid === undefined ? Number.NaN : cpuSeconds(proxyPid);
  const result = await runH2load(options);
  const cpuUsed = proxyPid === undefined ? Number.NaN : cpuSeconds(proxyPid) - cpuBefore;
  const served = (await backends.request<number[]>({ op: 'served' })).map(
    (count, index) => count - servedBefore[index]!,
  );
  const total = served.reduce((sum, count) => sum + count, 0);
  // HTTP 200 with an error grpc-status looks like a success to h2load; the backends know better.
  const unserved = Math.max(0, result.succeeded - total);
  return {
    rate: result.rate * (1 - unserved / Math.max(1, result.succeeded)),
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    maxMs: result.maxMs,
    errors: result.failed + unserved,
    served,
    cpuSPer10k: (cpuUsed / total) * 10_000,
    generatorCapacity: total / result.generatorCpuS,
  };
}
