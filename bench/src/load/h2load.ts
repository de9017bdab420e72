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
      `--duration=${Math.round(durationMs)}ms`,
      `--warm-up-time=${Math.round(warmUpMs)}ms`,
      `--log-file=${log}`,
    ];
    // --rps is per connection and a whole number.
    if (rps !== undefined) args.push(`--rps=${Math.max(1, Math.round(rps / connections))}`);
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
    const [succeeded, ...others] = status.slice(1).map(Number) as [number, ...number[]];
    const failed = [...counts.slice(1).map(Number), ...others].reduce((a, b) => a + b, 0);
    return {
      succeeded,
      failed,
      rate: succeeded / (durationMs / 1000),
      generatorCpuS,
      ...summariseLatencies(logLatenciesMs(readFileSync(log, 'utf8'))),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function logLatenciesMs(log: string): number[] {
  const latencies: number[] = [];
  for (const line of log.split('\n')) {
    const columns = line.split('\t');
    if (columns.length >= 3 && columns[1]!.startsWith('2'))
      latencies.push(Number(columns[2]) / 1000);
  }
  return latencies;
}
