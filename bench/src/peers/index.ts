import { haproxy } from './haproxy.js';
import { nghttpx } from './nghttpx.js';
import { nginx } from './nginx.js';
import { proxyKit, proxyKitAdmin, proxyKitFull } from './proxy-kit.js';
import type { ProxyPeer, RunningProxy } from './proxy-peer.js';

export { haproxy, nghttpx, nginx, proxyKit, proxyKitAdmin, proxyKitFull };
export const proxyPeers: readonly ProxyPeer[] = [
  proxyKit,
  proxyKitAdmin,
  proxyKitFull,
  nghttpx,
  nginx,
  haproxy,
];

/** A peer in a scenario: started, or absent with the reason. */
export interface StartedPeer {
  /** Peer name, with the policy when the scenario compares several. */
  label: string;
  running?: RunningProxy;
  absent?: string;
}

/**
 * Starts each `[peer, policy]` in front of `upstreams`. An absent peer is reported, not fatal; an
 * installed peer that fails to start is an error (after the ones started are stopped again).
 */
export async function startPeers(
  wanted: readonly (readonly [ProxyPeer, string])[],
  upstreams: readonly string[],
  label: (peer: ProxyPeer, policy: string) => string,
): Promise<StartedPeer[]> {
  const started: StartedPeer[] = [];
  try {
    for (const [peer, policy] of wanted) {
      const probe = peer.probe();
      started.push(
        'absent' in probe
          ? { label: label(peer, policy), absent: probe.absent }
          : { label: label(peer, policy), running: await peer.start(upstreams, policy) },
      );
    }
    return started;
  } catch (error) {
    await stopPeers(started);
    throw error;
  }
}

export async function stopPeers(peers: readonly StartedPeer[]): Promise<void> {
  await Promise.all(peers.map((peer) => peer.running?.stop()));
}
