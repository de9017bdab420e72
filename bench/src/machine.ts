import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { haproxy } from './peers/haproxy.js';
import { nginx } from './peers/nginx.js';
import { commandVersion } from './peers/proxy-peer.js';

/** What the figures were measured on, for the results' header. */
export interface Machine {
  date: string;
  cores: number;
  cpu: string;
  memoryGb: number;
  kernel: string;
  node: string;
  /** Load averages (1, 5, 15 min) when the run started: other work sharing the cores. */
  loadAtStart: number[];
  commit: string | undefined;
  /** Versions of the peers and tools, or why they are absent. */
  versions: Record<string, string>;
}

const PACKAGES = [
  '@grpc/grpc-js',
  'nice-grpc',
  'nice-grpc-client-middleware-deadline',
  'nice-grpc-client-middleware-retry',
  'nice-grpc-opentelemetry',
  'nice-grpc-prometheus',
  '@opentelemetry/sdk-node',
];

export function describeMachine(): Machine {
  const versions: Record<string, string> = {
    h2load: commandVersion('h2load', ['--version'])?.replace(/^h2load /, '') ?? 'absent',
  };
  for (const peer of [nginx, haproxy]) {
    const probe = peer.probe();
    versions[peer.name] = 'version' in probe ? probe.version : probe.absent;
  }
  for (const name of PACKAGES) versions[name] = packageVersion(name) ?? 'absent';
  return {
    date: new Date().toISOString(),
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    loadAtStart: loadavg().map((load) => Math.round(load * 100) / 100),
    commit: gitCommit(),
    versions,
  };
}

/** The installed version of an npm package, read from its package.json. */
export function packageVersion(name: string): string | undefined {
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve(name)));
    for (;;) {
      const manifest = join(dir, 'package.json');
      if (existsSync(manifest)) {
        const parsed = JSON.parse(readFileSync(manifest, 'utf8'));
        if (parsed.name === name) return parsed.version;
      }
      if (dirname(dir) === dir) return undefined;
      dir = dirname(dir);
    }
  } catch {
    return undefined;
  }
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}
