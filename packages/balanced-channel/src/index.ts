export type { BalancerName } from '@switchyard/balancer';
export {
  type BalancedChannel,
  type BalancedChannelOptions,
  createBalancedChannel,
} from './channel.js';
export type { BalancedChannelEvent } from './link.js';
export type { EndpointStatus, OutlierConfig } from './policy.js';
export type { BalancedTarget, DiscoveryKindOptions } from './target.js';
