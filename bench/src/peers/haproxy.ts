import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnListening } from '../processes.js';
import { commandVersion, type ProxyPeer } from './proxy-peer.js';

const BALANCE: Record<string, string> = {
  roundrobin: 'roundrobin',
  leastconn: 'leastconn',
  'random(2)': 'random(2)',
};

/**
 * HAProxy in HTTP mode with HTTP/2 on both sides (`proto h2`), so it balances each call (each
 * stream) and multiplexes calls over its backend connections; one thread, in the foreground
 * (`-db`), so the child is the process we measure.
 */
export const haproxy: ProxyPeer = {
  name: 'HAProxy',
  policies: Object.keys(BALANCE),
  probe() {
    const version = commandVersion('haproxy', ['-v']);
    return version
      ? { version: version.replace(/^HAProxy version (\S+).*$/, '$1') }
      : { absent: 'not installed: apt-get install -y haproxy' };
  },
  async start(upstreams, policy) {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-haproxy-'));
    const port = await freePort();
    const config = join(dir, 'haproxy.cfg');
    writeFileSync(
      config,
      `global
  nbthread 1
  maxconn 8000

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s

frontend grpc
  bind 127.0.0.1:${port} proto h2
  default_backend backends

backend backends
  balance ${BALANCE[policy] ?? 'roundrobin'}
${upstreams.map((address, i) => `  server b${i} ${address} proto h2`).join('\n')}
`,
    );
    const running = await spawnListening('haproxy', ['-db', '-f', config], port);
    return {
      ...running,
      target: `127.0.0.1:${port}`,
      async stop() {
        await running.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
