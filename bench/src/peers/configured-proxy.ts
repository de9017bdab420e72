import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnListening } from '../processes.js';
import { commandVersion, type ProxyPeer, type RunningProxy } from './proxy-peer.js';

/** A proxy installed from Debian and run on a config file of its own: nginx, HAProxy. */
export interface ConfiguredProxy {
  /** The command, which is also the name of its Debian package. */
  command: string;
  /** The config file's name. */
  configFile: string;
  /** The config that listens on `127.0.0.1:<port>` and writes whatever it writes under `dir`. */
  config(port: number, dir: string): string;
  /** The arguments that run it in the foreground on the config at `configPath`. */
  args(configPath: string, dir: string): string[];
}

/** The version the installed `command` reports for `-v`, or how to install it. */
export function probeInstalled(
  command: string,
  versionOf: (line: string) => string,
): ReturnType<ProxyPeer['probe']> {
  const line = commandVersion(command, ['-v']);
  return line
    ? { version: versionOf(line) }
    : { absent: `not installed: apt-get install -y ${command}` };
}

/**
 * Starts `proxy` on a free port of 127.0.0.1, its config in a fresh temporary directory that is
 * removed when it stops.
 */
export async function startConfigured(proxy: ConfiguredProxy): Promise<RunningProxy> {
  const dir = mkdtempSync(join(tmpdir(), `switchyard-${proxy.command}-`));
  const port = await freePort();
  const config = join(dir, proxy.configFile);
  writeFileSync(config, proxy.config(port, dir));
  const running = await spawnListening(proxy.command, proxy.args(config, dir), port);
  return {
    ...running,
    target: `127.0.0.1:${port}`,
    async stop() {
      await running.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
