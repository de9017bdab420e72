import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { exponentialBackoff } from '@switchyard/core';
import {
  type Discovery,
  DiscoveryError,
  type DiscoveryReportingOptions,
  EndpointPublisher,
  pacedDiscovery,
  ResolutionPacer,
  reportToConsole,
} from './discovery.js';
import { type Endpoint, endpoint } from './endpoint.js';

/** Which records {@link dnsDiscovery} asks for. */
export type DnsRecordType = 'A' | 'AAAA' | 'A+AAAA' | 'SRV';

/** Options of {@link dnsDiscovery}. */
export interface DnsDiscoveryOptions extends DiscoveryReportingOptions {
  /**
   * The name to resolve, fully qualified: `api.prod.svc.cluster.local` (node's resolver does not
   * apply resolv.conf's search list), or for SRV `_grpc._tcp.api.prod.svc.cluster.local`.
   */
  name: string;
  /** Port of every endpoint. Required for A/AAAA; not allowed for SRV, whose records carry it. */
  port?: number;
  /** Default `A+AAAA`, as grpc-go's DNS resolver does. SRV targets are resolved with A+AAAA. */
  type?: DnsRecordType;
  /** Re-resolution period. Default 5,000 ms. After a failure, retries back off up to it. */
  intervalMs?: number;
  /** `ip` or `ip:port` of the DNS servers to ask. Default: the system's (/etc/resolv.conf). */
  servers?: readonly string[];
  /** `refresh` re-resolves at most this often. Default 1,000 ms. */
  minRefreshIntervalMs?: number;
  /**
   * Timeout of one query (two tries). Default 2,000 ms: c-ares' own default (5 s × 4 tries) would
   * hold re-resolution up for 20 s.
   */
  timeoutMs?: number;
}

/**
 * Endpoints from DNS, re-resolved every `intervalMs` and on `refresh` — what a Kubernetes
 * headless Service needs. A failed lookup (timeout, SERVFAIL, NXDOMAIN, no records) keeps the
 * last good set, so a DNS outage never empties the pool; the error goes to `onError`.
 */
export function dnsDiscovery({
  name,
  port,
  type = 'A+AAAA',
  intervalMs = 5_000,
  servers,
  minRefreshIntervalMs = 1_000,
  timeoutMs = 2_000,
  onError = reportToConsole,
}: DnsDiscoveryOptions): Discovery {
  if (type === 'SRV' ? port !== undefined : port === undefined) {
    throw new TypeError(
      type === 'SRV'
        ? `dns discovery of ${name}: SRV records carry the port; remove "port"`
        : `dns discovery of ${name}: "port" is required for ${type} records`,
    );
  }
  const resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers) resolver.setServers([...servers]);
  const publisher = new EndpointPublisher(onError);
  const pacer = new ResolutionPacer(minRefreshIntervalMs);
  const failureBackoff = exponentialBackoff({ baseMs: 250, maxMs: intervalMs, jitter: 0.2 });

  const lookup = async (): Promise<Endpoint[]> => {
    if (type !== 'SRV') {
      return (await resolveHost(resolver, name, type)).map((host) => endpoint(host, port!));
    }
    const records = await resolver.resolveSrv(name);
    const perTarget = await Promise.all(
      records.map(async (record) => {
        const hosts = isIP(record.name)
          ? [record.name]
          : await resolveHost(resolver, record.name, 'A+AAAA').catch((error: unknown) => {
              // A target that no longer exists is a pod gone between the two queries; any other
              // error fails the whole lookup rather than dropping a live endpoint.
              if (isNoRecords(error)) return [];
              throw error;
            });
        return hosts.map((host) => endpoint(host, record.port));
      }),
    );
    const endpoints = perTarget.flat();
    if (endpoints.length === 0) throw new Error('no SRV target resolves to an address');
    return endpoints;
  };

  let failures = 0;
  return pacedDiscovery(publisher, pacer, {
    async resolve(reason, signal) {
      try {
        publisher.publish(await lookup());
        failures = 0;
      } catch (cause) {
        // Closed mid-lookup: `release` cancelled the resolver, which fails the lookup.
        if (signal.aborted) return 0;
        failures += 1;
        const after = reason === undefined ? '' : ` (re-resolving because: ${reason})`;
        onError(
          new DiscoveryError(
            `dns ${type} lookup of ${name} failed${after}: ${describe(cause)}; keeping the last good set`,
            { cause },
          ),
        );
      }
      return failures === 0 ? intervalMs : Math.min(intervalMs, failureBackoff(failures - 1));
    },
    release: () => resolver.cancel(),
  });
}

/** Addresses of `host`; "no such records" for one family of A+AAAA is not an error. */
async function resolveHost(
  resolver: Resolver,
  host: string,
  type: Exclude<DnsRecordType, 'SRV'>,
): Promise<string[]> {
  const families = [
    type !== 'AAAA' && resolver.resolve4(host),
    type !== 'A' && resolver.resolve6(host),
  ].filter((query) => query !== false);
  const results = await Promise.allSettled(families);
  const addresses: string[] = [];
  let noRecords: unknown;
  for (const result of results) {
    if (result.status === 'fulfilled') addresses.push(...result.value);
    else if (isNoRecords(result.reason)) noRecords = result.reason;
    else throw result.reason;
  }
  if (addresses.length === 0) throw noRecords;
  return addresses;
}

function isNoRecords(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'ENODATA' || code === 'ENOTFOUND';
}

function describe(cause: unknown): string {
  const code = (cause as { code?: unknown } | undefined)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  return typeof code === 'string' && !message.includes(code) ? `${code} ${message}` : message;
}
