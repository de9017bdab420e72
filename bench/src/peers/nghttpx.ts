import { startConfigured } from './configured-proxy.js';
import { commandVersion, type ProxyPeer } from './proxy-peer.js';

/**
 * nghttpx (nghttp2's proxy) with HTTP/2 on both sides, balancing each call (stream) round-robin
 * over its backends and multiplexing them over its backend connections; one worker thread, in
 * the foreground as a single process (no master forking a worker), so the child is the process we
 * measure.
 */
export const nghttpx: ProxyPeer = {
  name: 'nghttpx',
  policies: ['roundrobin'],
  probe: () => {
    const line = commandVersion('nghttpx', ['-v']);
    return line
      ? { version: line.replace(/^nghttpx /, '') }
      : { absent: 'not installed: apt-get install -y nghttp2-proxy' };
  },
  start: (upstreams) =>
    startConfigured({
      command: 'nghttpx',
      configFile: 'nghttpx.conf',
      config: (port, dir) => `frontend=127.0.0.1,${port};no-tls
${upstreams.map((address) => `backend=${address.replace(':', ',')};;proto=h2`).join('\n')}
workers=1
single-process=yes
no-ocsp=yes
no-via=yes
errorlog-file=${dir}/error.log
pid-file=${dir}/nghttpx.pid
`,
      args: (config) => [`--conf=${config}`],
    }),
};
