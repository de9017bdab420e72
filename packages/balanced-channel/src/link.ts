import type { Discovery, DiscoveryError } from '@switchyard/discovery';
import type { EndpointStatus, SwitchyardLoadBalancer } from './policy.js';

/** What happened to one endpoint of a balanced channel. */
export type BalancedChannelEvent =
  | { type: 'added'; address: string }
  | { type: 'removed'; address: string }
  | { type: 'ejected'; address: string; consecutiveFailures: number; ejectedMs: number }
  | { type: 'restored'; address: string };

/**
 * What one balanced channel's grpc-js resolver and policy share with the channel: its discovery,
 * where events and errors go, and the policy instance (grpc-js creates it, and creates it anew
 * after the channel has been idle). Only private fields, so grpc-js's tracing, which prints the
 * channel options as JSON, prints `{}`.
 */
export class ChannelLink {
  readonly #discovery: Discovery;
  readonly #onEvent: ((event: BalancedChannelEvent) => void) | undefined;
  readonly #onError: (error: DiscoveryError) => void;
  #policy: SwitchyardLoadBalancer | undefined;
  #resolverError: ((error: DiscoveryError) => void) | undefined;

  constructor(
    discovery: Discovery,
    onError: (error: DiscoveryError) => void,
    onEvent?: (event: BalancedChannelEvent) => void,
  ) {
    this.#discovery = discovery;
    this.#onError = onError;
    this.#onEvent = onEvent;
  }

  get discovery(): Discovery {
    return this.#discovery;
  }

  /** A discovery failure: to the app, and to the resolver (which fails calls with it until a set is known). */
  error(error: DiscoveryError): void {
    this.#onError(error);
    this.#resolverError?.(error);
  }

  event(event: BalancedChannelEvent): void {
    this.#onEvent?.(event);
  }

  /** Asks discovery to re-resolve now (rate-limited there). */
  refresh(reason: string): void {
    this.#discovery.refresh(reason);
  }

  /** The resolver in use wants discovery failures (until it has delivered endpoints). */
  onResolverError(listener: ((error: DiscoveryError) => void) | undefined): void {
    this.#resolverError = listener;
  }

  attach(policy: SwitchyardLoadBalancer): void {
    this.#policy = policy;
  }

  detach(policy: SwitchyardLoadBalancer): void {
    if (this.#policy === policy) this.#policy = undefined;
  }

  endpoints(): EndpointStatus[] {
    return this.#policy?.snapshot() ?? [];
  }
}
