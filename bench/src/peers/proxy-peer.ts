import { spawnSync } from 'node:child_process';
import type { RunningProcess } from '../processes.js';

/** A balancing gRPC proxy the bench compares: proxy-kit, nginx or HAProxy. */
export interface ProxyPeer {
  name: string;
  /** Its balancing policies; the first is its default. */
  policies: readonly string[];
  /** The version it reports, or why it cannot run (with the command that installs it). */
  probe(): { version: string } | { absent: string };
  /** Starts it in front of `upstreams` on 127.0.0.1, on one core (one worker or thread). */
  start(upstreams: readonly string[], policy: string): Promise<RunningProxy>;
}

/** A started proxy: `target` is `127.0.0.1:<port>`, `pid` the process whose CPU and RSS count. */
export interface RunningProxy extends RunningProcess {
  target: string;
}

/** The first line a command prints for its version flag, or undefined when it is not installed. */
export function commandVersion(command: string, args: readonly string[]): string | undefined {
  // nginx prints its version on stderr, the others on stdout.
  const { stdout, stderr, error } = spawnSync(command, args, { encoding: 'utf8' });
  if (error) return undefined;
  return `${stdout}${stderr}`.trim().split('\n')[0];
}
