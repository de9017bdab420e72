import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnListening } from '../processes.js';
import type { ProxyPeer } from './proxy-peer.js';

/** The package directory of `@switchyard/proxy-kit`, found from its entry point. */
function packageDir(): string | undefined {
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve('@switchyard/proxy-kit')));
    while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
    return dir;
  } catch {
    return undefined;
  }
}

function binary(): { cli: string; version: string } | undefined {
  const dir = packageDir();
  if (dir === undefined) return undefined;
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const cli = join(dir, manifest.bin?.['proxy-kit'] ?? 'dist/cli.js');
  return existsSync(cli) ? { cli, version: manifest.version } : undefined;
}

/** The real `proxy-kit` binary as a child process, `--workers 1` like the peers' one core. */
export const proxyKit: ProxyPeer = {
  name: 'proxy-kit',
  policies: ['p2c-ewma', 'p2c-least-request', 'round-robin'],
  probe() {
    const found = binary();
    return found
      ? { version: found.version }
      : { absent: 'not built yet (issue 8): npx turbo run build --filter=@switchyard/proxy-kit' };
  },
  async start(upstreams, policy) {
    const found = binary();
    if (!found) throw new Error('proxy-kit is not built');
    const port = await freePort();
    const target = `127.0.0.1:${port}`;
    const running = await spawnListening(
      process.execPath,
      [
        found.cli,
        '--listen',
        target,
        '--upstream',
        upstreams.join(','),
        '--balancer',
        policy,
        '--workers',
        '1',
        '--log-level',
        'warn',
      ],
      port,
    );
    return { ...running, target };
  },
};
