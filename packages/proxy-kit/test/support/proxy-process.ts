import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PROXY_KIT_NODE_FLAGS } from '../../src/node-flags.js';

/** The built binary, as `npx proxy-kit` runs it (turbo builds before tests). */
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** A `proxy-kit` child process that is listening. */
export interface ProxyProcess {
  /** `127.0.0.1:<port>` clients connect to. */
  address: string;
  port: number;
  child: ChildProcess;
  /** Everything it logged (JSON lines) and wrote to stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `proxy-kit` with `args` (plus `--listen 127.0.0.1:0 --workers 1` unless given) and
 * `env`, and waits for its `listening` log line.
 */
export async function startProxyProcess(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ProxyProcess> {
  const full = [...args];
  if (!full.includes('--listen') && !full.includes('--config'))
    full.push('--listen', '127.0.0.1:0');
  if (!full.includes('--workers')) full.push('--workers', '1');
  const child = spawn(process.execPath, [...PROXY_KIT_NODE_FLAGS, CLI, ...full], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let output = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const lines = createInterface({ input: child.stdout! });
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`proxy-kit did not start:\n${output}`)),
      15_000,
    );
    lines.on('line', (line) => {
      output += `${line}\n`;
      const match = /"msg":"listening"/.test(line) && /"address":"([^"]+)"/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`proxy-kit exited before listening:\n${output}`));
    });
  });
  const address = await listening;
  return {
    address,
    port: Number(address.split(':').pop()),
    child,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Resident memory of a process: now and its peak (VmHWM), in bytes. */
export function residentMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) =>
    Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Runs `count` calls of `call`, at most `concurrency` at a time; resolves with their results. */
export async function runCalls<T>(
  count: number,
  concurrency: number,
  call: (index: number) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await call(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

/** The `p`-th percentile (0–100) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] as number;
}
