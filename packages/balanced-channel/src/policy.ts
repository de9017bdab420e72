import {
  type ChannelOptions,
  connectivityState as ConnectivityState,
  experimental,
  status as GrpcStatus,
  Metadata,
} from '@grpc/grpc-js';
import {
  BALANCER_NAMES,
  type Balanceable,
  type Balancer,
  type BalancerName,
  type CallVerdict,
  createBalancer,
  EjectionBudget,
  type EjectionState,
  type Load,
  OutlierEjection,
  type OutlierOptions,
} from '@switchyard/balancer';
import type { BackoffOptions, Status } from '@switchyard/core';
import type { ChannelLink } from './link.js';

type SubchannelInterface = experimental.SubchannelInterface;
type PickResult = experimental.PickResult;

/** The name the policy is registered under, as a service config's `loadBalancingConfig` names it. */
export const POLICY_NAME = 'switchyard';

/** Outlier ejection options that survive the service config's JSON (no injected `random`). */
export type OutlierConfig = Omit<OutlierOptions, 'ejectionBackoff'> & {
  ejectionBackoff?: Omit<BackoffOptions, 'random'>;
};

/** The policy's configuration, as it travels in the channel's service config (JSON). */
export interface PolicyConfig {
  balancer: BalancerName;
  /** Peak-EWMA's estimate for an endpoint with no sample yet (p2c-ewma only). */
  defaultRttMs?: number;
  /** Peak-EWMA's decay time constant τ (p2c-ewma only). */
  decayMs?: number;
  /** Passive outlier ejection; `false` turns it off. */
  outlier: OutlierConfig | false;
}

/**
 * Checks a policy config and builds what it describes once, so that a bad value fails in
 * createBalancedChannel, with its name, rather than inside grpc-js — which logs a config its
 * policy rejects at debug level and falls back to pick_first.
 */
export function parsePolicyConfig(json: unknown): PolicyConfig {
  const config = (json ?? {}) as Partial<PolicyConfig>;
  const balancer = config.balancer ?? 'p2c-ewma';
  if (!(BALANCER_NAMES as readonly unknown[]).includes(balancer)) {
    throw new TypeError(
      `unknown balancer ${JSON.stringify(balancer)}: expected one of ${BALANCER_NAMES.join(', ')}`,
    );
  }
  const parsed: PolicyConfig = {
    balancer,
    defaultRttMs: config.defaultRttMs,
    decayMs: config.decayMs,
    outlier: config.outlier ?? {},
  };
  createBalancer(balancer, {
    defaultRttMs: parsed.defaultRttMs,
    decayMs: parsed.decayMs,
  }).newLoad();
  if (parsed.outlier !== false) {
    new OutlierEjection(
      parsed.outlier,
      new EjectionBudget(parsed.outlier.maxEjectedPercent),
    ).close();
  }
  return parsed;
}

class PolicyLoadBalancingConfig implements experimental.TypedLoadBalancingConfig {
  constructor(readonly config: PolicyConfig) {}

  getLoadBalancerName(): string {
    return POLICY_NAME;
  }

  toJsonObject(): object {
    return { [POLICY_NAME]: this.config };
  }

  static createFromJson(json: unknown): PolicyLoadBalancingConfig {
    return new PolicyLoadBalancingConfig(parsePolicyConfig(json));
  }
}

/** An endpoint's state as {@link BalancedChannel.endpoints} reports it. */
export interface EndpointStatus {
  /** `host:port`. */
  address: string;
  /** Its connection's state. */
  connectivity: 'IDLE' | 'CONNECTING' | 'READY' | 'TRANSIENT_FAILURE' | 'SHUTDOWN';
  /** Outlier ejection's state; undefined when ejection is off. */
  ejection: EjectionState | undefined;
  /** Calls sent to it and not yet ended. */
  pending: number;
}

/** One discovered endpoint: its subchannel (one HTTP/2 connection), load record and ejection. */
class Endpoint implements Balanceable {
  connectivity: ConnectivityState;

  constructor(
    readonly address: string,
    readonly subchannel: SubchannelInterface,
    readonly load: Load,
    readonly ejection: OutlierEjection | undefined,
    readonly listener: experimental.ConnectivityStateListener,
  ) {
    this.connectivity = subchannel.getConnectivityState();
  }

  /** Whether new calls may go to it: connected and not ejected (tower's readiness). */
  get ready(): boolean {
    return this.connectivity === ConnectivityState.READY && (this.ejection?.isReady() ?? true);
  }

  /** Why it takes no calls, for the status of calls that could not be placed. */
  notReadyReason(): string {
    if (this.connectivity !== ConnectivityState.READY) {
      return ConnectivityState[this.connectivity].toLowerCase().replace('_', ' ');
    }
    return this.ejection?.notReadyReason() ?? 'ready';
  }

  verdict(code: GrpcStatus): CallVerdict {
    // The client's own cancellation or deadline says nothing about the endpoint (proxy-kit's
    // `origin: 'client'`); grpc-js reports both locally with these codes.
    if (code === GrpcStatus.CANCELLED || code === GrpcStatus.DEADLINE_EXCEEDED) return 'abandoned';
    return this.ejection?.isFailure(code as number as Status) ? 'failed' : 'succeeded';
  }
}

const QUEUE: PickResult = {
  pickResultType: experimental.PickResultType.QUEUE,
  subchannel: null,
  status: null,
  onCallStarted: null,
  onCallEnded: null,
};

/**
 * Picks of this turn of the event loop whose calls may not have started yet, taken back at
 * the end of the turn (setImmediate) if they still have not.
 */
const unstarted: (() => void)[] = [];

function sweepUnstarted(): void {
  for (const takeBack of unstarted.splice(0)) takeBack();
}

/**
 * The pick of one call. Its load is counted at the pick: grpc-js starts the call's stream only
 * after a promise (the call credentials' metadata, even with none), and picks that waited for
 * that to count their calls all saw the same loads — a burst of 40 calls in one turn went to
 * one of two endpoints, all 40 (test/balancing.test.ts). grpc-js calls `onCallEnded` only for
 * calls it started (a pick is dropped and redone when the subchannel disconnects meanwhile), so
 * a pick whose call has not started by the end of the turn is taken back, and counted again if
 * it starts later. The outlier probe is taken at the start.
 */
function pickOf(endpoint: Endpoint): PickResult {
  let startedAt = endpoint.load.start();
  let state: 'picked' | 'started' | 'taken back' = 'picked';
  let probe = false;
  if (unstarted.length === 0) setImmediate(sweepUnstarted);
  unstarted.push(() => {
    if (state !== 'picked') return;
    state = 'taken back';
    endpoint.load.abandon();
  });
  return {
    pickResultType: experimental.PickResultType.COMPLETE,
    subchannel: endpoint.subchannel,
    status: null,
    onCallStarted: () => {
      if (state === 'taken back') startedAt = endpoint.load.start();
      state = 'started';
      probe = endpoint.ejection?.sent() ?? false;
    },
    onCallEnded: (code) => {
      endpoint.load.settle(startedAt);
      endpoint.ejection?.finished(probe, endpoint.verdict(code));
    },
  };
}

/**
 * grpc-js load-balancing policy over @switchyard/balancer: one subchannel (one HTTP/2
 * connection) per endpoint the resolver lists, all kept connected; each call goes to the
 * endpoint the balancer picks among the ready ones — connected and not ejected — and reports its
 * start and end to that endpoint's load record and outlier ejection. Endpoints the resolver drops
 * leave the balancer at once; their calls in flight finish on the connection, which grpc-js closes
 * gracefully once nothing uses it.
 */
class SwitchyardLoadBalancer implements experimental.LoadBalancer {
  readonly #helper: experimental.ChannelControlHelper;
  #configJson = '';
  #balancer: Balancer = createBalancer('p2c-ewma');
  #outlier: OutlierConfig | false = false;
  #budget = new EjectionBudget();
  #link: ChannelLink | undefined;
  readonly #endpoints = new Map<string, Endpoint>();
  /** The ready endpoints, rebuilt whenever readiness changes, so that a pick does not scan. */
  #ready: Endpoint[] = [];
  /** What a pick returns while no endpoint is ready: queue, or fail with the reason. */
  #noneReady: PickResult = QUEUE;
  #resolutionError = '';
  #lastError = '';
  #destroyed = false;
  readonly #picker: experimental.Picker = {
    pick: () => {
      const endpoint = this.#balancer.pick(this.#ready);
      return endpoint === undefined ? this.#noneReady : pickOf(endpoint);
    },
  };
  readonly #readinessChanged = () => this.#publish();

  constructor(helper: experimental.ChannelControlHelper) {
    this.#helper = helper;
  }

  updateAddressList(
    endpointList: experimental.StatusOr<experimental.Endpoint[]>,
    lbConfig: experimental.TypedLoadBalancingConfig,
    options: ChannelOptions,
  ): boolean {
    if (!(lbConfig instanceof PolicyLoadBalancingConfig)) return false;
    this.#link = options[LINK_OPTION] as ChannelLink | undefined;
    this.#link?.attach(this);
    const json = JSON.stringify(lbConfig.config);
    if (json !== this.#configJson) {
      // A new balancer or ejection config: start every endpoint afresh (grpc-js's subchannel
      // pool hands the same connections back).
      for (const endpoint of [...this.#endpoints.values()]) this.#remove(endpoint);
      const { balancer, outlier, ...ewma } = lbConfig.config;
      this.#configJson = json;
      this.#balancer = createBalancer(balancer, ewma);
      this.#outlier = outlier;
      this.#budget = new EjectionBudget(outlier === false ? undefined : outlier.maxEjectedPercent);
    }
    if (!endpointList.ok) {
      // Keep what we have; only with nothing to use does the error reach calls.
      this.#resolutionError = endpointList.error.details;
      this.#publish();
      return true;
    }
    this.#resolutionError = '';
    const listed = new Map<string, experimental.SubchannelAddress>();
    for (const { addresses } of endpointList.value) {
      for (const address of addresses) {
        listed.set(experimental.subchannelAddressToString(address), address);
      }
    }
    for (const [address, endpoint] of this.#endpoints) {
      if (!listed.has(address)) this.#remove(endpoint);
    }
    for (const [address, subchannelAddress] of listed) {
      if (!this.#endpoints.has(address)) this.#add(address, subchannelAddress, options);
    }
    this.#publish();
    return true;
  }

  exitIdle(): void {
    // Every endpoint is kept connected (IDLE subchannels reconnect at once): never idle.
  }

  resetBackoff(): void {
    // Reconnection backoff belongs to each subchannel.
  }

  destroy(): void {
    this.#destroyed = true;
    for (const endpoint of [...this.#endpoints.values()]) this.#remove(endpoint);
    this.#link?.detach(this);
  }

  getTypeName(): string {
    return POLICY_NAME;
  }

  /** Each endpoint's state, for {@link BalancedChannel.endpoints}. */
  snapshot(): EndpointStatus[] {
    return [...this.#endpoints.values()].map((endpoint) => ({
      address: endpoint.address,
      connectivity: ConnectivityState[endpoint.connectivity] as EndpointStatus['connectivity'],
      ejection: endpoint.ejection?.state,
      pending: endpoint.load.pending,
    }));
  }

  #add(
    address: string,
    subchannelAddress: experimental.SubchannelAddress,
    options: ChannelOptions,
  ) {
    const subchannel = this.#helper.createSubchannel(subchannelAddress, options);
    subchannel.ref();
    const link = this.#link;
    const ejection =
      this.#outlier === false
        ? undefined
        : new OutlierEjection(this.#outlier, this.#budget, {
            ejected: (consecutiveFailures, ejectedMs) =>
              link?.event({ type: 'ejected', address, consecutiveFailures, ejectedMs }),
            restored: () => link?.event({ type: 'restored', address }),
            readinessChanged: this.#readinessChanged,
          });
    const endpoint: Endpoint = new Endpoint(
      address,
      subchannel,
      this.#balancer.newLoad(),
      ejection,
      (_subchannel, previous, next, _keepaliveTime, errorMessage) =>
        this.#connectivityChanged(endpoint, previous, next, errorMessage),
    );
    this.#endpoints.set(address, endpoint);
    subchannel.addConnectivityStateListener(endpoint.listener);
    this.#helper.addChannelzChild(subchannel.getChannelzRef());
    link?.event({ type: 'added', address });
    // grpc-js's subchannel pool may hand over a connection another channel already uses.
    if (endpoint.connectivity !== ConnectivityState.READY) subchannel.startConnecting();
  }

  #remove(endpoint: Endpoint): void {
    this.#endpoints.delete(endpoint.address);
    endpoint.subchannel.removeConnectivityStateListener(endpoint.listener);
    endpoint.ejection?.close();
    this.#helper.removeChannelzChild(endpoint.subchannel.getChannelzRef());
    // The last reference gone, grpc-js closes the connection gracefully: calls in flight finish.
    endpoint.subchannel.unref();
    this.#link?.event({ type: 'removed', address: endpoint.address });
  }

  #connectivityChanged(
    endpoint: Endpoint,
    previous: ConnectivityState,
    next: ConnectivityState,
    errorMessage: string | undefined,
  ): void {
    if (this.#destroyed || this.#endpoints.get(endpoint.address) !== endpoint) return;
    endpoint.connectivity = next;
    if (errorMessage) this.#lastError = `${endpoint.address}: ${errorMessage}`;
    if (previous === ConnectivityState.READY && next !== ConnectivityState.READY) {
      // A connection lost may mean the endpoint is gone: ask discovery to look again now
      // (rate-limited there) rather than at its next interval.
      this.#reresolve(
        `${endpoint.address}: connection lost${errorMessage ? ` (${errorMessage})` : ''}`,
      );
    } else if (next === ConnectivityState.TRANSIENT_FAILURE) {
      this.#reresolve(`${endpoint.address}: ${errorMessage ?? 'connection failed'}`);
    }
    // Kept connected: an idle subchannel reconnects at once, a failed one after its backoff.
    if (next === ConnectivityState.IDLE || next === ConnectivityState.TRANSIENT_FAILURE) {
      endpoint.subchannel.startConnecting();
    }
    this.#publish();
  }

  #reresolve(reason: string): void {
    if (this.#link) this.#link.refresh(reason);
    else this.#helper.requestReresolution();
  }

  /** Rebuilds the ready list and tells the channel its state and picker. */
  #publish(): void {
    if (this.#destroyed) return;
    const endpoints = [...this.#endpoints.values()];
    this.#ready = endpoints.filter((endpoint) => endpoint.ready);
    let state: ConnectivityState;
    let error: string | null = null;
    if (this.#ready.length > 0) {
      state = ConnectivityState.READY;
      this.#noneReady = QUEUE;
    } else if (
      endpoints.some(
        (endpoint) =>
          endpoint.connectivity === ConnectivityState.CONNECTING ||
          endpoint.connectivity === ConnectivityState.IDLE ||
          endpoint.ejection?.probing,
      )
    ) {
      // An endpoint is about to be usable (connecting, or its probe's verdict is due): wait.
      state = ConnectivityState.CONNECTING;
      this.#noneReady = QUEUE;
    } else {
      // Nothing will be ready soon: calls fail now (wait-for-ready ones keep waiting) and say why.
      state = ConnectivityState.TRANSIENT_FAILURE;
      error =
        endpoints.length === 0
          ? `no endpoints: ${this.#resolutionError || 'discovery lists none'}`
          : `no ready endpoint: ${endpoints
              .map((endpoint) => `${endpoint.address} ${endpoint.notReadyReason()}`)
              .join('; ')}${this.#lastError ? `; last error: ${this.#lastError}` : ''}`;
      this.#noneReady = {
        pickResultType: experimental.PickResultType.TRANSIENT_FAILURE,
        subchannel: null,
        status: { code: GrpcStatus.UNAVAILABLE, details: error, metadata: new Metadata() },
        onCallStarted: null,
        onCallEnded: null,
      };
    }
    this.#helper.updateState(state, this.#picker, error);
  }
}

/**
 * The channel option that carries a channel's {@link ChannelLink} to its resolver and policy.
 * grpc-js leaves options with this prefix out of subchannel arguments, so that an object here
 * does not stop subchannels being shared.
 */
export const LINK_OPTION = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.switchyard_channel_link`;

export type { SwitchyardLoadBalancer };

let registered = false;

/** Registers the policy with grpc-js (once per process: grpc-js's registry is process-wide). */
export function registerPolicy(): void {
  if (registered) return;
  registered = true;
  experimental.registerLoadBalancerType(
    POLICY_NAME,
    SwitchyardLoadBalancer,
    PolicyLoadBalancingConfig,
  );
}
