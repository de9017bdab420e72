import { isIPv6 } from 'node:net';

/** One place a call can be sent. */
export interface Endpoint {
  /** `host:port`; an IPv6 host is bracketed, `[::1]:50051`. Unique within an update. */
  readonly address: string;
  /** Hostname or IP literal, IPv6 without brackets (what `net.connect` takes). */
  readonly host: string;
  readonly port: number;
  /** Facts a balancer may use (zone, node, pod); never needed to connect. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** An endpoint as written in a config or endpoints file: `"host:port"` or `{ address, labels }`. */
export type EndpointEntry =
  | string
  | { readonly address: string; readonly labels?: Record<string, string> };

/** Builds an {@link Endpoint}, bracketing an IPv6 host in its address. */
export function endpoint(
  host: string,
  port: number,
  labels?: Readonly<Record<string, string>>,
): Endpoint {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new RangeError(`port ${port} of ${host} is not in 1..65535`);
  }
  const address = isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return labels && Object.keys(labels).length > 0
    ? { address, host, port, labels }
    : { address, host, port };
}

/**
 * Parses `host:port` or `[ipv6]:port`. A bare IPv6 address is rejected rather than guessed at:
 * `::1:8080` could be either a host or a host and a port.
 */
export function parseEndpoint(
  address: string,
  labels?: Readonly<Record<string, string>>,
): Endpoint {
  const match = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(address);
  const host = match?.[1] ?? match?.[2];
  if (!match || host === undefined || (match[1] !== undefined && !isIPv6(match[1]))) {
    throw new SyntaxError(`"${address}" is not host:port (write an IPv6 address as [::1]:50051)`);
  }
  return endpoint(host, Number(match[3]), labels);
}

/** Parses an {@link EndpointEntry}. */
export function parseEndpointEntry(entry: EndpointEntry): Endpoint {
  return typeof entry === 'string'
    ? parseEndpoint(entry)
    : parseEndpoint(entry.address, entry.labels);
}

/**
 * The canonical form of a set: sorted by address, one endpoint per address (the first one given
 * wins), so two sources listing the same endpoints in any order compare equal.
 */
export function canonicalEndpoints(endpoints: Iterable<Endpoint>): Endpoint[] {
  const byAddress = new Map<string, Endpoint>();
  for (const e of endpoints) if (!byAddress.has(e.address)) byAddress.set(e.address, e);
  return [...byAddress.values()].sort((a, b) => (a.address < b.address ? -1 : 1));
}

/** Whether two canonical sets are the same, labels included. */
export function sameEndpoints(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  return a.length === b.length && a.every((e, i) => sameEndpoint(e, b[i]!));
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  if (a.address !== b.address) return false;
  const aKeys = Object.keys(a.labels ?? {});
  const bLabels = b.labels ?? {};
  return (
    aKeys.length === Object.keys(bLabels).length && aKeys.every((k) => a.labels![k] === bLabels[k])
  );
}
