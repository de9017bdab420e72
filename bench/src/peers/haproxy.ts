import { probeInstalled, startConfigured } from './configured-proxy.js';
import type { ProxyPeer } from './proxy-peer.js';

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
  probe: () => probeInstalled('haproxy', (line) => line.replace(/^HAProxy version (\S+).*$/, '$1')),
  start: (upstreams, policy) =>
    startConfigured({
      command: 'haproxy',
      configFile: 'haproxy.cfg',
      config: (port) => `global
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
      args: (config) => ['-db', '-f', config],
    }),
};
