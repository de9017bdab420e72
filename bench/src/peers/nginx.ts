import { probeInstalled, startConfigured } from './configured-proxy.js';
import type { ProxyPeer } from './proxy-peer.js';

const UPSTREAM_POLICY: Record<string, string> = {
  'round-robin': '',
  least_conn: 'least_conn;',
  'random two least_conn': 'random two least_conn;',
};

/**
 * nginx `grpc_pass`, one process (`master_process off`, so the worker is the child we measure),
 * everything it writes under a temporary prefix. Upstream keepalive is on: without it nginx
 * opens a connection per call. nginx still sends one stream per upstream connection at a time
 * (it cannot multiplex HTTP/2 upstream), so it keeps a pool of them.
 */
export const nginx: ProxyPeer = {
  name: 'nginx',
  policies: Object.keys(UPSTREAM_POLICY),
  probe: () => probeInstalled('nginx', (line) => line.replace(/^nginx version: /, '')),
  start: (upstreams, policy) =>
    startConfigured({
      command: 'nginx',
      configFile: 'nginx.conf',
      config: (port, dir) => `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream backends {
    ${UPSTREAM_POLICY[policy] ?? ''}
${upstreams.map((address) => `    server ${address};`).join('\n')}
    keepalive 1024;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} http2;
    http2_max_concurrent_streams 1000;
    keepalive_requests 1000000;
    location / { grpc_pass grpc://backends; }
  }
}
`,
      // -e: the error log before the config is read, which would otherwise go to /var/log/nginx.
      args: (config, dir) => ['-p', dir, '-c', config, '-e', `${dir}/error.log`],
    }),
};
