import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMessage } from '@switchyard/core';
import { TestRequest } from '@switchyard/testing';
import { own, reapedChildrenCpuSeconds } from '../processes.js';
import { type LatencySummary, summariseLatencies } from '../stats.js';

/** The unary method every proxy scenario calls. */
export const UNARY_PATH = '/switchyard.testing.v1.TestService/Unary';

/** One h2load run against `target` (`127.0.0.1:<port>`), closed loop unless `rps` is set. */
export interface H2loadOptions {
  target: string;
  /** HTTP/2 connections. */
  connections: number;
  /** Concurrent streams per connection (h2load `-m`). */
  streams: number;
  durationMs: number;
  warmUpMs: number;
  /** Open loop: requests per second for the whole run, spread over the connections. */
  rps?: number;
  /**
   * Open loop only: connections open 1 ms apart, so that their request timers are out of phase.
   * h2load paces each connection on a timer of its own that starts when the connection does; all
   * started together, they fire together, and 1,000 req/s over 10 connections arrives as 100
   * bursts of 10 simultaneous calls, whose queueing then dominates every latency percentile.
   * Staggered, they arrive about 1 ms apart. h2load's `--rate` (connections per period) cannot
   * be combined with `--duration`, so the run is sized by request count instead, and calls that
   * started in the first `warmUpMs` are left out of the figures.
   */
  staggerConnections?: boolean;
}

export interface H2loadResult extends LatencySummary {
  /** Responses with a 2xx HTTP status after the warm-up. */
  succeeded: number;
  /** Failed, errored or timed-out requests, and non-2xx responses. */
  failed: number;
  /** Successes per second. */
  rate: number;
  /** CPU seconds h2load itself used, warm-up included. */
  generatorCpuS: number;
}

/**
 * Runs h2load (Debian `nghttp2-client`) posting one framed TestRequest per call — the 5-byte
 * gRPC prefix and the protobuf — with the headers a gRPC client sends. Latencies come from its
 * per-request log (`--log-file`), whose third column is microseconds until the end of the response.
 */
export async function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  const { target, connections, streams, durationMs, warmUpMs, rps } = options;
  const staggered = rps !== undefined && options.staggerConnections === true;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-h2load-'));
  try {
    const body = join(dir, 'request.bin');
    const log = join(dir, 'requests.log');
    writeFileSync(
      body,
      encodeMessage(
        TestRequest.encode({ ...TestRequest.fromPartial({}), payload: 'bench' }).finish(),
      ),
    );
    const args = [
      `http://${target}${UNARY_PATH}`,
      `--data=${body}`,
      '--header=content-type: application/grpc',
      '--header=te: trailers',
      `--clients=${connections}`,
      `--max-concurrent-streams=${streams}`,
      `--log-file=${log}`,
    ];
    // --rps is per connection and a whole number.
    const perConnection = rps === undefined ? 0 : Math.max(1, Math.round(rps / connections));
    if (rps !== undefined) args.push(`--rps=${perConnection}`);
    if (staggered) {
      const calls = Math.round((perConnection * connections * (durationMs + warmUpMs)) / 1000);
      args.push('--rate=1', '--rate-period=1ms', `--requests=${calls}`);
    } else {
      args.push(
        `--duration=${Math.round(durationMs)}ms`,
        `--warm-up-time=${Math.round(warmUpMs)}ms`,
      );
    }
    const cpuBefore = reapedChildrenCpuSeconds();
    const stdout = await new Promise<string>((resolve, reject) =>
      // h2load can wait forever for connections that never finish their handshake; a run that
      // overstays its duration by half a minute is a failure, not a result.
      own(
        execFile(
          'h2load',
          args,
          { maxBuffer: 16 << 20, timeout: durationMs + warmUpMs + 30_000 },
          (error, out, err) => {
            if (!error) return resolve(out);
            const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
            reject(
              new Error(
                missing
                  ? 'h2load is not installed: apt-get install -y nghttp2-client'
                  : `h2load failed: ${error.message}\n${out}${err}`,
              ),
            );
          },
        ),
      ),
    );
    const generatorCpuS = reapedChildrenCpuSeconds() - cpuBefore;
    const counts = /(\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
    const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
    if (!counts || !status) throw new Error(`unexpected h2load output:\n${stdout}`);
    const [ok, ...others] = status.slice(1).map(Number) as [number, ...number[]];
    // Staggered runs count failures over the warm-up too: h2load reports them only in total.
    const failed = [...counts.slice(1).map(Number), ...others].reduce((a, b) => a + b, 0);
    const latencies = logLatenciesMs(readFileSync(log, 'utf8'), staggered ? warmUpMs : 0);
    const succeeded = staggered ? latencies.length : ok;
    return {
      succeeded,
      failed,
      rate: succeeded / (durationMs / 1000),
      generatorCpuS,
      ...summariseLatencies(latencies),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Latencies of the 2xx responses in h2load's log (start time in µs since the epoch, status,
 * µs to the end of the response), leaving out calls that started within `skipMs` of the first.
 */
function logLatenciesMs(log: string, skipMs: number): number[] {
  const rows: [startUs: number, latencyUs: number][] = [];
  let firstUs = Number.POSITIVE_INFINITY;
  for (const line of log.split('\n')) {
    const columns = line.split('\t');
    if (columns.length < 3) continue;
    const startUs = Number(columns[0]);
    firstUs = Math.min(firstUs, startUs);
    if (columns[1]!.startsWith('2')) rows.push([startUs, Number(columns[2])]);
  }
  const fromUs = firstUs + skipMs * 1000;
  return rows.filter(([startUs]) => startUs >= fromUs).map(([, latencyUs]) => latencyUs / 1000);
}
