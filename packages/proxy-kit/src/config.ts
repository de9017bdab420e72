import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { BALANCER_NAMES } from '@switchyard/balancer';
import {
  type DiscoveryConfig,
  discoveryConfigSchema,
  durationSchema as duration,
} from '@switchyard/discovery';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import type { ConnectionPoolOptions } from './connection-pool.js';
import type { HealthCheckOptions } from './health-check.js';
import { type ListenerOptions, parseListenAddress } from './listener.js';
import type { ProxyOptions } from './proxy.js';

const listenAddress = z.string().refine(
  (text) => {
    try {
      parseListenAddress(text);
      return true;
    } catch {
      return false;
    }
  },
  { error: (issue) => `"${issue.input}" is not host:port (IPv6 as [::1]:4140)` },
);

const positiveInt = z.number().int().positive();
const bytes = positiveInt.max(2 ** 31 - 1);

const listenSchema = z.preprocess(
  (value) => (typeof value === 'string' ? { address: value } : value),
  z.strictObject({
    address: listenAddress,
    tls: z
      .strictObject({ cert: z.string(), key: z.string(), clientCa: z.string().optional() })
      .optional(),
    maxConcurrentStreams: positiveInt.optional(),
    streamWindowBytes: bytes.optional(),
    connectionWindowBytes: bytes.optional(),
    maxHeaderListBytes: bytes.optional(),
  }),
);

/** The YAML file's shape; every key is optional except `discovery` (or `--upstream`). */
export const proxyConfigSchema = z.strictObject({
  listen: listenSchema.default({ address: '127.0.0.1:4140' }),
  workers: positiveInt.max(256).optional(),
  balancer: z.enum(BALANCER_NAMES).default('p2c-ewma'),
  discovery: discoveryConfigSchema,
  upstream: z
    .strictObject({
      tls: z
        .strictObject({
          ca: z.string().optional(),
          cert: z.string().optional(),
          key: z.string().optional(),
          serverName: z.string().optional(),
        })
        .optional(),
      connectTimeout: duration.optional(),
      keepalive: z.strictObject({ interval: duration, timeout: duration }).partial().optional(),
      maxConnectionsPerEndpoint: positiveInt.max(64).optional(),
      maxStreamsPerConnection: z.number().int().min(0).optional(),
      streamWindowBytes: bytes.optional(),
      connectionWindowBytes: bytes.optional(),
      reconnect: z.strictObject({ base: duration, max: duration }).partial().optional(),
    })
    .default({}),
  admission: z
    .strictObject({ queueCapacity: positiveInt.optional(), failfast: duration.optional() })
    .default({}),
  outlier: z
    .strictObject({
      consecutiveFailures: positiveInt.optional(),
      baseEjection: duration.optional(),
      maxEjection: duration.optional(),
      maxEjectedPercent: z.number().min(0).max(100).optional(),
    })
    .default({}),
  healthCheck: z
    .strictObject({
      service: z.string().default(''),
      interval: duration.optional(),
      timeout: duration.optional(),
    })
    .optional(),
  shutdown: z.strictObject({ grace: duration.default(10_000) }).default({ grace: 10_000 }),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .default({ level: 'info' }),
});

/** A validated configuration, with file paths resolved against the config file's directory. */
export type ProxyConfig = z.output<typeof proxyConfigSchema> & {
  /** Directory that relative paths in the file are resolved against. */
  baseDir: string;
  /** The file it came from (or `command line`), for error messages. */
  source: string;
};

/** A configuration that does not parse or validate; the message names the file, line and key. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Reads and validates a YAML config file.
 * @throws ConfigError e.g. `proxy.yaml:7:14: upstream.keepalive.interval: "5" is not a duration…`
 */
export function loadConfigFile(path: string, overrides: Record<string, unknown> = {}): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${path}: cannot read: ${(error as Error).message}`);
  }
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const syntax = document.errors[0];
  if (syntax) {
    const { line, col } = lineCounter.linePos(syntax.pos[0]);
    throw new ConfigError(`${path}:${line}:${col}: ${syntax.message.split('\n')[0]}`);
  }
  const raw = document.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${path}: expected a mapping of settings at the top level`);
  }
  // The line of the key's node; for a key that is missing, of the mapping that should hold it.
  const where = (key: readonly PropertyKey[]) => {
    for (let depth = key.length; depth >= 0; depth--) {
      const node = document.getIn(key.slice(0, depth) as (string | number)[], true) as
        | { range?: [number, number, number] }
        | undefined;
      if (node?.range) {
        const { line, col } = lineCounter.linePos(node.range[0]);
        return `${path}:${line}:${col}`;
      }
    }
    return path;
  };
  return validateConfig(
    { ...raw, ...overrides },
    { baseDir: dirname(resolve(path)), source: path, where },
  );
}

/** Validates a configuration given as an object (from flags, or a parsed file). */
export function validateConfig(
  input: unknown,
  {
    baseDir = process.cwd(),
    source = 'command line',
    where = () => source,
  }: { baseDir?: string; source?: string; where?: (key: readonly PropertyKey[]) => string } = {},
): ProxyConfig {
  const result = proxyConfigSchema.safeParse(input);
  if (result.success) return { ...result.data, baseDir, source };
  const lines = result.error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      // One line per key, pointing at the key itself: the usual cause is a typo.
      return issue.keys.map((name) => {
        const key = [...issue.path, name];
        return `${where(key)}: ${keyPath(key)}: unknown key`;
      });
    }
    return [`${where(issue.path)}: ${keyPath(issue.path) || '(top level)'}: ${issue.message}`];
  });
  throw new ConfigError(lines.join('\n'));
}

function keyPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) =>
      typeof key === 'number' ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`,
    )
    .join('');
}

/** Everything the binary needs besides the library's {@link ProxyOptions}. */
export interface ResolvedConfig {
  proxy: Omit<ProxyOptions, 'discovery' | 'logger'>;
  discovery: DiscoveryConfig;
  healthCheck: HealthCheckOptions | undefined;
  workers: number;
  graceMs: number;
  logLevel: string;
}

/** Turns a validated config into library options, reading the TLS files it names. */
export function resolveConfig(config: ProxyConfig): ResolvedConfig {
  const read = (file: string, key: string) => {
    try {
      return readFileSync(resolve(config.baseDir, file));
    } catch (error) {
      throw new ConfigError(
        `${config.source}: ${key}: cannot read ${file}: ${(error as Error).message}`,
      );
    }
  };
  const { listen, upstream, admission, outlier } = config;
  const { tls, ...listenRest } = listen;
  const listener: ListenerOptions = listenRest;
  if (tls) {
    listener.tls = {
      cert: read(tls.cert, 'listen.tls.cert'),
      key: read(tls.key, 'listen.tls.key'),
      ...(tls.clientCa ? { ca: read(tls.clientCa, 'listen.tls.clientCa'), requestCert: true } : {}),
    };
  }
  const pool: ConnectionPoolOptions = {
    connectTimeoutMs: upstream.connectTimeout,
    keepaliveIntervalMs: upstream.keepalive?.interval,
    keepaliveTimeoutMs: upstream.keepalive?.timeout,
    maxConnections: upstream.maxConnectionsPerEndpoint,
    maxStreamsPerConnection: upstream.maxStreamsPerConnection,
    streamWindowBytes: upstream.streamWindowBytes,
    connectionWindowBytes: upstream.connectionWindowBytes,
  };
  if (upstream.reconnect) {
    pool.reconnectBackoff = {
      baseMs: upstream.reconnect.base ?? 100,
      maxMs: upstream.reconnect.max ?? 5_000,
      jitter: 0.2,
    };
  }
  if (upstream.tls) {
    pool.tls = {
      ...(upstream.tls.ca ? { ca: read(upstream.tls.ca, 'upstream.tls.ca') } : {}),
      ...(upstream.tls.cert ? { cert: read(upstream.tls.cert, 'upstream.tls.cert') } : {}),
      ...(upstream.tls.key ? { key: read(upstream.tls.key, 'upstream.tls.key') } : {}),
      ...(upstream.tls.serverName ? { servername: upstream.tls.serverName } : {}),
    };
  }
  return {
    proxy: {
      listen: listener,
      balancer: config.balancer,
      admission: { queueCapacity: admission.queueCapacity, failfastMs: admission.failfast },
      outlier: {
        consecutiveFailures: outlier.consecutiveFailures,
        maxEjectedPercent: outlier.maxEjectedPercent,
        ...(outlier.baseEjection || outlier.maxEjection
          ? {
              ejectionBackoff: {
                baseMs: outlier.baseEjection ?? 1_000,
                maxMs: outlier.maxEjection ?? 60_000,
                jitter: 0.25,
              },
            }
          : {}),
      },
      upstream: pool,
    },
    discovery: withPathsFrom(config.baseDir, config.discovery),
    healthCheck: config.healthCheck && {
      service: config.healthCheck.service,
      intervalMs: config.healthCheck.interval,
      timeoutMs: config.healthCheck.timeout,
    },
    workers: config.workers ?? availableParallelism(),
    graceMs: config.shutdown.grace,
    logLevel: config.log.level,
  };
}

/** Files a discovery section names are, like TLS files, relative to the config file. */
function withPathsFrom(baseDir: string, discovery: DiscoveryConfig): DiscoveryConfig {
  if (discovery.type === 'file') return { ...discovery, path: resolve(baseDir, discovery.path) };
  if (discovery.type === 'kubernetes' && discovery.kubeconfig !== undefined) {
    return { ...discovery, kubeconfig: resolve(baseDir, discovery.kubeconfig) };
  }
  return discovery;
}
