import type { Scenario } from '../results.js';
import { balancedChannel } from './balanced-channel.js';
import { balancingQuality } from './balancing.js';
import { middlewareInstructions } from './instructions.js';
import { middlewareOverhead } from './middleware.js';
import { proxyThroughput } from './proxy.js';
import { proxyScale } from './scale.js';

/** Every scenario, in the order they run and appear in RESULTS.md. */
export const scenarios: Scenario[] = [
  middlewareOverhead,
  middlewareInstructions,
  proxyThroughput,
  balancingQuality,
  proxyScale,
  balancedChannel,
];
