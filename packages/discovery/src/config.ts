import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { configIssueMessage } from '@switchyard/core';
import * as v from 'valibot';
import type { Discovery, DiscoveryReportingOptions } from './discovery.js';
import { dnsDiscovery } from './dns.js';
import { parseEndpoint } from './endpoint.js';
import { fileDiscovery } from './file.js';
import { kubernetesDiscovery } from './kubernetes.js';
import {
  describeIssues,
  durationSchema as duration,
  endpointEntrySchema,
  issuePath,
} from './schema.js';
import { staticDiscovery } from './static.js';

const portNumber = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65_535));

const dnsServer = v.pipe(
  v.string(),
  v.check(
    (server) => {
      if (isIP(server)) return true;
      try {
        return isIP(parseEndpoint(server).host) !== 0;
      } catch {
        return false;
      }
    },
    (issue) => `"${issue.input}" is not an IP address or ip:port ([::1]:53 for IPv6)`,
  ),
);

const nonEmpty = v.pipe(v.string(), v.minLength(1, 'must not be empty'));

/** The `discovery:` section of a proxy config, validated; keys and defaults as in the README. */
export const discoveryConfigSchema = v.variant('type', [
  v.strictObject({
    type: v.literal('static'),
    endpoints: v.pipe(v.array(endpointEntrySchema), v.minLength(1, 'needs at least one endpoint')),
  }),
  v.pipe(
    v.strictObject({
      type: v.literal('dns'),
      name: nonEmpty,
      port: v.optional(portNumber),
      recordType: v.optional(v.picklist(['A', 'AAAA', 'A+AAAA', 'SRV']), 'A+AAAA'),
      interval: v.optional(duration),
      servers: v.optional(v.pipe(v.array(dnsServer), v.minLength(1, 'needs at least one server'))),
      timeout: v.optional(duration),
      minRefreshInterval: v.optional(duration),
    }),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const dns = dataset.value;
      if (dns.recordType === 'SRV' && dns.port !== undefined) {
        addIssue({
          message: 'SRV records carry the port; remove it',
          path: issuePath(dns, ['port']),
        });
      }
      if (dns.recordType !== 'SRV' && dns.port === undefined) {
        addIssue({
          message: `required for ${dns.recordType} records`,
          path: issuePath(dns, ['port']),
        });
      }
    }),
  ),
  v.strictObject({
    type: v.literal('file'),
    path: nonEmpty,
    interval: v.optional(duration),
    minRefreshInterval: v.optional(duration),
  }),
  v.strictObject({
    type: v.literal('kubernetes'),
    service: nonEmpty,
    port: v.union([nonEmpty, portNumber], 'expected the Service port name or the pod port number'),
    namespace: v.optional(nonEmpty),
    kubeconfig: v.optional(nonEmpty),
    watchTimeout: v.optional(duration),
  }),
]);

/** A validated `discovery:` section. */
export type DiscoveryConfig = v.InferOutput<typeof discoveryConfigSchema>;

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
  const result = v.safeParse(discoveryConfigSchema, input, { message: configIssueMessage });
  if (result.success) return result.output;
  const where = source === undefined ? '' : `${source}: `;
  throw new DiscoveryConfigError(`${where}${describeIssues(result.issues, key.split('.'))}`);
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
