import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Discovery,
  type DiscoveryError,
  type DnsDiscoveryOptions,
  dnsDiscovery,
  type EndpointEntry,
  type FileDiscoveryOptions,
  fileDiscovery,
  type KubernetesDiscoveryOptions,
  kubernetesDiscovery,
  parseEndpoint,
  staticDiscovery,
} from '@switchyard/discovery';

/**
 * Where a balanced channel finds its endpoints:
 * - `dns:///host:port`, or `dns://<dns server>/host:port` — A and AAAA records, re-resolved;
 * - `k8s:///service.namespace:port` (also `kubernetes:`; namespace optional, `port` a number or
 *   the Service port's name) — the Service's EndpointSlices, listed and watched;
 * - `file:///path/endpoints.yaml` — a watched JSON/YAML file `{ endpoints: [host:port, …] }`;
 * - `static:///host:port,host:port`, or an array of `host:port` entries;
 * - any @switchyard/discovery `Discovery` (the caller keeps it: closing the channel leaves it open).
 */
export type BalancedTarget = string | readonly EndpointEntry[] | Discovery;

/** Options of each kind of discovery, beyond what the target says. */
export interface DiscoveryKindOptions {
  /** For `dns:` targets (interval, record type, timeouts). */
  dns?: Omit<DnsDiscoveryOptions, 'name' | 'port' | 'onError'>;
  /** For `file:` targets (polling interval, settle time). */
  file?: Omit<FileDiscoveryOptions, 'path' | 'onError'>;
  /** For `k8s:` targets (kubeconfig, watch timeout, backoff). */
  kubernetes?: Omit<KubernetesDiscoveryOptions, 'service' | 'port' | 'namespace' | 'onError'>;
}

/** A target turned into a discovery and the `:authority` its calls carry. */
export interface ResolvedTarget {
  discovery: Discovery;
  /** `host[:port]` sent as `:authority` (and checked against TLS certificates). */
  authority: string;
  /** Whether the channel started the discovery, and so closes it. */
  owned: boolean;
}

const EXPECTED =
  'expected dns:///host:port, k8s:///service.namespace:port, file:///path/to/endpoints.yaml, ' +
  'static:///host:port,host:port, an array of "host:port", or a Discovery';

// DNS-1035 (Service) and DNS-1123 (namespace) labels; a port name is an IANA service name.
const SERVICE = '[a-z]([-a-z0-9]*[a-z0-9])?';
const NAMESPACE = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const K8S_PATH = new RegExp(
  `^(?<service>${SERVICE})(?:\\.(?<namespace>${NAMESPACE})(?:\\.svc(?:\\.[-a-z0-9.]+)?)?)?:(?<port>\\d+|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$`,
);

/**
 * Turns a target into the discovery that follows it. Throws a `TypeError` that quotes the target
 * and says what is wrong with it.
 */
export function resolveTarget(
  target: BalancedTarget,
  options: DiscoveryKindOptions,
  onError: (error: DiscoveryError) => void,
): ResolvedTarget {
  if (isDiscovery(target)) return { discovery: target, authority: 'localhost', owned: false };
  if (typeof target !== 'string') return staticTarget(target, JSON.stringify(target), onError);
  const fail = (problem: string): never => {
    throw new TypeError(`balanced channel target ${JSON.stringify(target)}: ${problem}`);
  };
  const match = /^(?<scheme>[a-z][a-z0-9+.-]*):(?:\/\/(?<authority>[^/]*)\/)?(?<path>.*)$/i.exec(
    target,
  );
  const { scheme = '', authority = '', path = '' } = match?.groups ?? {};
  switch (scheme.toLowerCase()) {
    case 'dns': {
      const { host, port, address } = hostPort(path, fail);
      if (isIP(host)) {
        // An address needs no lookup (grpc's DNS resolver does the same).
        return staticTarget([address], JSON.stringify(target), onError);
      }
      const servers = authority === '' ? undefined : [authority];
      if (servers && !isIP(authority) && !isIpAndPort(authority)) {
        fail(`the DNS server "${authority}" is not an IP address or ip:port`);
      }
      return {
        discovery: dnsDiscovery({ ...options.dns, name: host, port, servers, onError }),
        authority: address,
        owned: true,
      };
    }
    case 'k8s':
    case 'kubernetes': {
      const parsed = K8S_PATH.exec(path)?.groups;
      if (!parsed) {
        fail(
          'expected k8s:///service.namespace:port (namespace optional; port a number or the Service port name)',
        );
      }
      const { service = '', port = '' } = parsed!;
      const namespace = parsed!.namespace ?? (authority || undefined);
      const numeric = /^\d+$/.test(port);
      return {
        discovery: kubernetesDiscovery({
          ...options.kubernetes,
          service,
          port: numeric ? Number(port) : port,
          namespace,
          onError,
        }),
        authority: `${service}${namespace ? `.${namespace}.svc` : ''}${numeric ? `:${port}` : ''}`,
        owned: true,
      };
    }
    case 'file': {
      let file: string;
      if (target.slice(5).startsWith('//')) {
        try {
          file = fileURLToPath(target);
        } catch (error) {
          return fail(
            `${(error as Error).message} (write file:///absolute/path or file:relative/path)`,
          );
        }
      } else {
        file = resolve(target.slice(5));
      }
      if (target.slice(5) === '' || file.endsWith('/')) fail('names no file');
      return {
        discovery: fileDiscovery({ ...options.file, path: file, onError }),
        authority: 'localhost',
        owned: true,
      };
    }
    case 'static': {
      const entries = path.split(',').map((entry) => entry.trim());
      return staticTarget(entries, JSON.stringify(target), onError);
    }
    default:
      return fail(match ? `unknown scheme "${scheme}:"; ${EXPECTED}` : EXPECTED);
  }
}

function staticTarget(
  entries: readonly EndpointEntry[],
  quoted: string,
  onError: (error: DiscoveryError) => void,
): ResolvedTarget {
  if (entries.length === 0 || entries.every((entry) => entry === '')) {
    throw new TypeError(`balanced channel target ${quoted}: lists no endpoint`);
  }
  try {
    const discovery = staticDiscovery(entries, { onError });
    const first = entries[0]!;
    return { discovery, authority: typeof first === 'string' ? first : first.address, owned: true };
  } catch (error) {
    throw new TypeError(`balanced channel target ${quoted}: ${(error as Error).message}`);
  }
}

function hostPort(text: string, fail: (problem: string) => never) {
  try {
    return parseEndpoint(text);
  } catch (error) {
    return fail((error as Error).message);
  }
}

function isIpAndPort(text: string): boolean {
  try {
    return isIP(parseEndpoint(text).host) !== 0;
  } catch {
    return false;
  }
}

function isDiscovery(target: BalancedTarget): target is Discovery {
  return (
    typeof target === 'object' &&
    !Array.isArray(target) &&
    typeof (target as Discovery).subscribe === 'function'
  );
}
