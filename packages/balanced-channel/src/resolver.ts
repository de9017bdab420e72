import { type ChannelOptions, experimental, status as GrpcStatus } from '@grpc/grpc-js';
import type { DiscoveryUpdate } from '@switchyard/discovery';
import { ChannelLink } from './link.js';
import { LINK_OPTION } from './policy.js';

/** The URI scheme of balanced channels' grpc-js targets: `switchyard:///<authority>`. */
export const RESOLVER_SCHEME = 'switchyard';

/**
 * A grpc-js resolver over a @switchyard/discovery `Discovery`: every set discovery publishes
 * becomes the channel's endpoint list. grpc-js destroys its resolver when the channel goes idle
 * and asks again when a call comes, so the discovery (owned by the channel) is only unsubscribed
 * from, never closed, here.
 */
class DiscoveryResolver implements experimental.Resolver {
  readonly #link: ChannelLink;
  readonly #listener: experimental.ResolverListener;
  #unsubscribe: (() => void) | undefined;
  #latest: DiscoveryUpdate | undefined;
  #scheduled = false;
  #delivered = false;

  constructor(
    target: experimental.GrpcUri,
    listener: experimental.ResolverListener,
    options: ChannelOptions,
  ) {
    const link = options[LINK_OPTION];
    if (!(link instanceof ChannelLink)) {
      throw new Error(
        `${experimental.uriToString(target)}: ${RESOLVER_SCHEME}: targets belong to channels made by createBalancedChannel`,
      );
    }
    this.#link = link;
    this.#listener = listener;
  }

  updateResolution(): void {
    if (this.#unsubscribe) {
      this.#link.refresh('grpc-js asked for re-resolution');
      return;
    }
    this.#link.onResolverError((error) => {
      // Until a first set arrives, calls would wait for ever: fail them with what went wrong.
      if (this.#delivered || !this.#unsubscribe) return;
      this.#listener(
        experimental.statusOrFromError({ code: GrpcStatus.UNAVAILABLE, details: error.message }),
        {},
        null,
        '',
      );
    });
    // Discovery replays its latest set synchronously; grpc-js wants no listener call from here.
    this.#unsubscribe = this.#link.discovery.subscribe((update) => {
      this.#latest = update;
      if (this.#scheduled) return;
      this.#scheduled = true;
      process.nextTick(() => this.#deliver());
    });
  }

  destroy(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#link.onResolverError(undefined);
    this.#latest = undefined;
    this.#delivered = false;
  }

  #deliver(): void {
    this.#scheduled = false;
    const update = this.#latest;
    if (!update || !this.#unsubscribe) return;
    this.#delivered = true;
    const endpoints = update.endpoints.map(({ host, port }) => ({ addresses: [{ host, port }] }));
    // No service config of our own (null): grpc-js keeps the channel's `grpc.service_config`,
    // which names our policy and holds the app's method configs.
    this.#listener(experimental.statusOrFromValue(endpoints), {}, null, '');
  }

  static getDefaultAuthority(target: experimental.GrpcUri): string {
    return target.path;
  }
}

let registered = false;

/** Registers the resolver with grpc-js (once per process: grpc-js's registry is process-wide). */
export function registerResolver(): void {
  if (registered) return;
  registered = true;
  experimental.registerResolver(RESOLVER_SCHEME, DiscoveryResolver);
}
