import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { Discovery, DiscoveryReportingOptions } from './discovery.js';
import { dnsDiscovery } from './dns.js';
import { parseEndpoint } from './endpoint.js';
import { fileDiscovery } from './file.js';
import { kubernetesDiscovery } from './kubernetes.js';
import { describeIssues, durationSchema as duration, endpointEntrySchema } from './schema.js';
import { staticDiscovery } from './static.js';

const portNumber = z.number().int().min(1).max(65_535);

const dnsServer = z.string().refine(
  (server) => {
    if (isIP(server)) return true;
    try {
      return isIP(parseEndpoint(server).host) !== 0;
    } catch {
      return false;
    }
  },
  { error: (issue) => `"${issue.input}" is not an IP address or ip:port ([::1]:53 for IPv6)` },
);

/** The `discovery:` section of a proxy config, validated; keys and defaults as in the README. */
export const discoveryConfigSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('static'),
    endpoints: z.array(endpointEntrySchema).min(1, 'needs at least one endpoint'),
  }),
  z
    .strictObject({
      type: z.literal('dns'),
      name: z.string().min(1),
      port: portNumber.optional(),
      recordType: z.enum(['A', 'AAAA', 'A+AAAA', 'SRV']).default('A+AAAA'),
      interval: duration.optional(),
      servers: z.array(dnsServer).min(1).optional(),
      timeout: duration.optional(),
      minRefreshInterval: duration.optional(),
    })
    .superRefine((dns, context) => {
      if (dns.recordType === 'SRV' && dns.port !== undefined) {
        context.addIssue({
          code: 'custom',
          path: ['port'],
          message: 'SRV records carry the port; remove it',
        });
      }
      if (dns.recordType !== 'SRV' && dns.port === undefined) {
        context.addIssue({
          code: 'custom',
          path: ['port'],
          message: `required for ${dns.recordType} records`,
        });
      }
    }),
  z.strictObject({
    type: z.literal('file'),
    path: z.string().min(1),
    interval: duration.optional(),
    minRefreshInterval: duration.optional(),
  }),
  z.strictObject({
    type: z.literal('kubernetes'),
    service: z.string().min(1),
    port: z.union([z.string().min(1), portNumber], {
      error: 'expected the Service port name or the pod port number',
    }),
    namespace: z.string().min(1).optional(),
    kubeconfig: z.string().min(1).optional(),
    watchTimeout: duration.optional(),
  }),
]);

/** A validated `discovery:` section. */
export type DiscoveryConfig = z.output<typeof discoveryConfigSchema>;

/** A `discovery:` section that does not validate; the message names the file and each key. */
export class DiscoveryConfigError extends Error {
  override readonly name = 'DiscoveryConfigError';
}

/**
 * Validates a `discovery:` section read from a config file.
 *
 * @param source names the file in errors, e.g. `proxy.yaml`.
 * @param key where the section sits in that file, for error messages. Default `discovery`.
 * @throws DiscoveryConfigError e.g. `proxy.yaml: discovery.port: required for A+AAAA records`.
 */
export function parseDiscoveryConfig(
  input: unknown,
  { source, key = 'discovery' }: { source?: string; key?: string } = {},
): DiscoveryConfig {
  const result = discoveryConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const where = source === undefined ? '' : `${source}: `;
  throw new DiscoveryConfigError(`${where}${describeIssues(result.error, key.split('.'))}`);
}

/** Options of {@link createDiscovery}. */
export interface CreateDiscoveryOptions extends DiscoveryReportingOptions {
  /**
   * Directory that relative `path` and `kubeconfig` values resolve against — the config file's,
   * so that a config means the same from any working directory. Default `process.cwd()`.
   */
  baseDir?: string;
}

/** Starts the discovery a validated `discovery:` section describes. */
export function createDiscovery(
  config: DiscoveryConfig,
  { baseDir = process.cwd(), ...options }: CreateDiscoveryOptions = {},
): Discovery {
  switch (config.type) {
    case 'static':
      return staticDiscovery(config.endpoints, options);
    case 'dns':
      return dnsDiscovery({
        ...options,
        name: config.name,
        port: config.port,
        type: config.recordType,
        intervalMs: config.interval,
        servers: config.servers,
        timeoutMs: config.timeout,
        minRefreshIntervalMs: config.minRefreshInterval,
      });
    case 'file':
      return fileDiscovery({
        ...options,
        path: resolve(baseDir, config.path),
        intervalMs: config.interval,
        minRefreshIntervalMs: config.minRefreshInterval,
      });
    case 'kubernetes':
      return kubernetesDiscovery({
        ...options,
        service: config.service,
        port: config.port,
        namespace: config.namespace,
        kubeConfig:
          config.kubeconfig === undefined ? undefined : resolve(baseDir, config.kubeconfig),
        watchTimeoutSeconds:
          config.watchTimeout === undefined ? undefined : Math.ceil(config.watchTimeout / 1000),
      });
  }
}
