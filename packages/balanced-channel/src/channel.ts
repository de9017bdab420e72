import { Channel, type ChannelCredentials, type ChannelOptions, credentials } from '@grpc/grpc-js';
import type { BalancerName } from '@switchyard/balancer';
import type { DiscoveryError } from '@switchyard/discovery';
import { type BalancedChannelEvent, ChannelLink } from './link.js';
import {
  type EndpointStatus,
  LINK_OPTION,
  type OutlierConfig,
  POLICY_NAME,
  parsePolicyConfig,
  registerPolicy,
} from './policy.js';
import { RESOLVER_SCHEME, registerResolver } from './resolver.js';
import { type BalancedTarget, type DiscoveryKindOptions, resolveTarget } from './target.js';

/** Options of {@link createBalancedChannel}. */
export interface BalancedChannelOptions extends DiscoveryKindOptions {
  /** `p2c-ewma` (default), `p2c-least-request` or `round-robin`: @switchyard/balancer's. */
  balancer?: BalancerName;
  /** Peak-EWMA's estimate of an endpoint with no sample yet (p2c-ewma). Default 30 ms. */
  defaultRttMs?: number;
  /** Peak-EWMA's decay time constant τ (p2c-ewma). Default 10 s. */
  decayMs?: number;
  /**
   * Passive outlier ejection, as in proxy-kit: 7 consecutive failures (UNAVAILABLE, INTERNAL,
   * UNKNOWN, DATA_LOSS) eject an endpoint for 1 s doubling to 60 s, then one probe call decides;
   * at most 10% of the endpoints (at least one) at once. `false` turns it off.
   */
  outlier?: OutlierConfig | false;
  /** HTTP/2 PING interval on every connection, with or without calls. Default 10 s (proxy-kit's). */
  keepaliveMs?: number;
  /** A PING unanswered this long drops the connection. Default 5 s (proxy-kit's). */
  keepaliveTimeoutMs?: number;
  /** Default insecure. */
  credentials?: ChannelCredentials;
  /**
   * grpc-js channel options; they win over the channel's own defaults (keepalive). A
   * `grpc.service_config` may hold method configs (retry policies, timeouts) but no
   * load-balancing config: the channel's balancer is `balancer`.
   */
  channelOptions?: ChannelOptions;
  /** Receives each discovery failure (the last good set stays in force). Default `console.warn`. */
  onError?: (error: DiscoveryError) => void;
  /** Receives endpoints added, removed, ejected and restored. */
  onEvent?: (event: BalancedChannelEvent) => void;
}

/** A grpc-js `Channel` (so nice-grpc's `createClient` takes it) that balances each call. */
export interface BalancedChannel extends Channel {
  /** The endpoints the channel balances over now: their connections, ejections and load. */
  endpoints(): EndpointStatus[];
}

class BalancedChannelImpl extends Channel implements BalancedChannel {
  readonly #link: ChannelLink;
  readonly #ownsDiscovery: boolean;
  readonly #onError: (error: DiscoveryError) => void;

  constructor(
    target: string,
    channelCredentials: ChannelCredentials,
    options: ChannelOptions,
    link: ChannelLink,
    ownsDiscovery: boolean,
    onError: (error: DiscoveryError) => void,
  ) {
    super(target, channelCredentials, options);
    this.#link = link;
    this.#ownsDiscovery = ownsDiscovery;
    this.#onError = onError;
  }

  endpoints(): EndpointStatus[] {
    return this.#link.endpoints();
  }

  /** Closes the connections (calls still running fail) and the discovery the channel started. */
  override close(): void {
    super.close();
    if (!this.#ownsDiscovery) return;
    this.#link.discovery.close().catch((cause: unknown) => {
      this.#onError(cause as DiscoveryError);
    });
  }
}

/**
 * A channel that spreads calls per request over the endpoints discovery finds, through grpc-js's
 * own extension points: a resolver (scheme `switchyard:`) over @switchyard/discovery and a
 * load-balancing policy (`switchyard`) over @switchyard/balancer — the code proxy-kit balances
 * with. One connection per endpoint, kept alive with PINGs; endpoints follow discovery without a
 * restart; failing endpoints are ejected as proxy-kit ejects them.
 *
 * @example
 * const channel = createBalancedChannel('dns:///orders.default.svc.cluster.local:50051');
 * const orders = createClient(OrdersDefinition, channel);
 *
 * @throws TypeError naming what is wrong: a target it cannot read, an unknown balancer, a bad
 * option value, a `grpc.service_config` that is not JSON or chooses its own balancer.
 */
export function createBalancedChannel(
  target: BalancedTarget,
  options: BalancedChannelOptions = {},
): BalancedChannel {
  const {
    balancer = 'p2c-ewma',
    defaultRttMs,
    decayMs,
    outlier = {},
    keepaliveMs = 10_000,
    keepaliveTimeoutMs = 5_000,
    credentials: channelCredentials = credentials.createInsecure(),
    channelOptions = {},
    onError = (error) => console.warn(`switchyard balanced channel: ${error.message}`),
    onEvent,
    dns,
    file,
    kubernetes,
  } = options;
  let policy: ReturnType<typeof parsePolicyConfig>;
  try {
    policy = parsePolicyConfig({ balancer, defaultRttMs, decayMs, outlier });
  } catch (error) {
    throw new TypeError(`balanced channel: ${(error as Error).message}`);
  }
  const serviceConfig = withPolicy(channelOptions['grpc.service_config'], policy);
  registerPolicy();
  registerResolver();
  // Last: a bad option above must not leave a discovery running. A discovery may report a
  // failure while it starts (a file's directory that cannot be watched), before the link exists.
  let link: ChannelLink | undefined;
  const resolved = resolveTarget(target, { dns, file, kubernetes }, (error) =>
    link ? link.error(error) : onError(error),
  );
  link = new ChannelLink(resolved.discovery, onError, onEvent);
  return new BalancedChannelImpl(
    `${RESOLVER_SCHEME}:///${resolved.authority}`,
    channelCredentials,
    {
      'grpc.keepalive_time_ms': keepaliveMs,
      'grpc.keepalive_timeout_ms': keepaliveTimeoutMs,
      // As proxy-kit's pool does: an idle connection that died is found before a call needs it.
      'grpc.keepalive_permit_without_calls': 1,
      ...channelOptions,
      'grpc.service_config': serviceConfig,
      [LINK_OPTION]: link,
    },
    link,
    resolved.owned,
    onError,
  );
}

/** The app's service config (method configs and all) with our policy as its balancer. */
function withPolicy(json: unknown, policy: object): string {
  let config: Record<string, unknown> = {};
  if (json !== undefined) {
    try {
      config = JSON.parse(String(json));
    } catch (error) {
      throw new TypeError(
        `balanced channel: channelOptions['grpc.service_config'] is not JSON: ${(error as Error).message}`,
      );
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new TypeError(
        "balanced channel: channelOptions['grpc.service_config'] must be a JSON object",
      );
    }
    if ('loadBalancingConfig' in config || 'loadBalancingPolicy' in config) {
      throw new TypeError(
        "balanced channel: channelOptions['grpc.service_config'] chooses a load-balancing policy; the channel's is set by the `balancer` option",
      );
    }
  }
  return JSON.stringify({ ...config, loadBalancingConfig: [{ [POLICY_NAME]: policy }] });
}
