import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { BALANCER_NAMES } from '@switchyard/balancer';
import { statusFromName } from '@switchyard/core';
import {
  type DiscoveryConfig,
  discoveryConfigSchema,
  durationSchema as duration,
} from '@switchyard/discovery';
import {
  type AuthorizationPolicy,
  compileAuthorizationPolicy,
  PolicyConfigError,
  parseAuthorizationPolicy,
} from '@switchyard/middleware-identity';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import type { ConnectionPoolOptions } from './connection-pool.js';
import { type ListenerOptions, parseListenAddress } from './listener.js';
import type { ProxyOptions, RouteDefinition, UpstreamDefinition } from './proxy.js';

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
    maxConnections: positiveInt.optional(),
    handshakeTimeout: duration.optional(),
    idleTimeout: duration.optional(),
    limits: z
      .strictObject({
        maxHeaderBlockBytes: bytes.optional(),
        maxContinuationFrames: positiveInt.optional(),
        headerBlockTimeout: duration.optional(),
        maxPingsPerSecond: positiveInt.optional(),
        maxSettingsPerSecond: positiveInt.optional(),
        maxEmptyFramesPerSecond: positiveInt.optional(),
        maxResetsPerSecond: positiveInt.optional(),
        maxQueuedOutputBytes: bytes.optional(),
        settingsTimeout: duration.optional(),
      })
      .optional(),
  }),
);

const statusCode = z.string().transform((name, context) => {
  const code = statusFromName(name);
  if (code === undefined) {
    context.addIssue({ code: 'custom', message: `"${name}" is not a gRPC status name` });
    return z.NEVER;
  }
  return code;
});

const methodGlob = z.string().refine((value) => /^\/?(\*\*|[^/\s]+\/[^/\s]+)$/.test(value), {
  message: "expected 'package.Service/Method' (globs allowed) or '**'",
});

const routeSchema = z
  .strictObject({
    name: z.string().optional(),
    methods: z.array(methodGlob).min(1, 'needs at least one method'),
    upstream: z.string().default('default'),
    timeout: duration.optional(),
    idempotent: z.boolean().default(false),
    retry: z
      .strictObject({
        maxAttempts: z.number().int().min(0).max(10).optional(),
        codes: z.array(statusCode).optional(),
        baseDelay: duration.optional(),
        maxDelay: duration.optional(),
        bufferLimit: bytes.optional(),
      })
      .optional(),
    hedging: z
      .strictObject({ maxAttempts: z.number().int().min(1).max(10), delay: duration.optional() })
      .optional(),
    retryBudget: z
      .strictObject({
        ttl: duration.optional(),
        minPerSecond: z.number().min(0).optional(),
        ratio: z.number().min(0).max(1).optional(),
      })
      .optional(),
    // Inline rules, or the path of a policy file (YAML or JSON), as middleware-identity reads it.
    authorization: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  })
  .superRefine((route, context) => {
    if (typeof route.authorization === 'object') {
      try {
        compileAuthorizationPolicy(route.authorization as unknown as AuthorizationPolicy);
      } catch (error) {
        if (!(error instanceof PolicyConfigError)) throw error;
        context.addIssue({
          code: 'custom',
          path: ['authorization', ...keyParts(error.key)],
          message: error.message.replace(/^authorization policy: (?:[^:]+: )?/, ''),
        });
      }
    }
    for (const key of ['retry', 'hedging'] as const) {
      if (route[key] !== undefined && !route.idempotent) {
        context.addIssue({
          code: 'custom',
          path: [key],
          message: `${key} needs idempotent: true (only idempotent methods may be sent twice)`,
        });
      }
    }
  });

const upstreamSchema = z
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
  .default({});

const admissionSchema = z
  .strictObject({ queueCapacity: positiveInt.optional(), failfast: duration.optional() })
  .default({});

const outlierSchema = z
  .strictObject({
    consecutiveFailures: positiveInt.optional(),
    baseEjection: duration.optional(),
    maxEjection: duration.optional(),
    maxEjectedPercent: z.number().min(0).max(100).optional(),
  })
  .default({});

const healthCheckSchema = z
  .strictObject({
    service: z.string().default(''),
    interval: duration.optional(),
    timeout: duration.optional(),
  })
  .optional();

/** One named upstream of `upstreams:`: the keys of the top-level one. */
const namedUpstreamSchema = z.strictObject({
  discovery: discoveryConfigSchema,
  balancer: z.enum(BALANCER_NAMES).default('p2c-ewma'),
  upstream: upstreamSchema,
  admission: admissionSchema,
  outlier: outlierSchema,
  healthCheck: healthCheckSchema,
});

/** The YAML file's shape; every key is optional except `discovery` (or `--upstream`). */
export const proxyConfigSchema = z
  .strictObject({
    listen: listenSchema.default({ address: '127.0.0.1:4140' }),
    workers: positiveInt.max(256).optional(),
    balancer: z.enum(BALANCER_NAMES).default('p2c-ewma'),
    discovery: discoveryConfigSchema,
    upstreams: z
      .record(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i), namedUpstreamSchema)
      .optional(),
    routes: z.array(routeSchema).optional(),
    identity: z
      .union([
        z.literal(false),
        z.strictObject({
          header: z.string().optional(),
          trustedProxies: z.array(z.string().min(1)).optional(),
        }),
      ])
      .optional(),
    upstream: upstreamSchema,
    admission: admissionSchema,
    outlier: outlierSchema,
    healthCheck: healthCheckSchema,
    shutdown: z.strictObject({ grace: duration.default(10_000) }).default({ grace: 10_000 }),
    log: z
      .strictObject({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info'),
      })
      .default({ level: 'info' }),
  })
  .superRefine((config, context) => {
    config.routes?.forEach((route, index) => {
      if (route.upstream !== 'default' && config.upstreams?.[route.upstream] === undefined) {
        context.addIssue({
          code: 'custom',
          path: ['routes', index, 'upstream'],
          message: `no upstream named "${route.upstream}" (upstreams: default${Object.keys(
            config.upstreams ?? {},
          )
            .map((name) => `, ${name}`)
            .join('')})`,
        });
      }
    });
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

/** `rules[0].identities[1]` → `['rules', 0, 'identities', 1]`. */
function keyParts(key: string): (string | number)[] {
  return key === ''
    ? []
    : key
        .split(/\.|(?=\[)/)
        .map((part) => (part.startsWith('[') ? Number(part.slice(1, -1)) : part));
}

function keyPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) =>
      typeof key === 'number' ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`,
    )
    .join('');
}

/** An upstream of the binary: the library's definition, and the discovery to create for it. */
export interface ResolvedUpstream {
  options: Omit<UpstreamDefinition, 'discovery'>;
  discovery: DiscoveryConfig;
}

/** Everything the binary needs besides the library's {@link ProxyOptions}. */
export interface ResolvedConfig {
  proxy: Omit<ProxyOptions, keyof UpstreamDefinition | 'upstreams' | 'logger'>;
  /** Every upstream, `default` (the top-level one) first. */
  upstreams: Record<string, ResolvedUpstream>;
  workers: number;
  graceMs: number;
  logLevel: string;
}

type UpstreamConfig = z.output<typeof namedUpstreamSchema>;
type RouteConfig = z.output<typeof routeSchema>;

/** Turns a validated config into library options, reading the TLS and policy files it names. */
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
  const { listen } = config;
  const { tls, handshakeTimeout, idleTimeout, limits, ...listenRest } = listen;
  const listener: ListenerOptions = {
    ...listenRest,
    handshakeTimeoutMs: handshakeTimeout,
    idleTimeoutMs: idleTimeout,
    limits: limits && {
      maxHeaderBlockBytes: limits.maxHeaderBlockBytes,
      maxContinuationFrames: limits.maxContinuationFrames,
      headerBlockTimeoutMs: limits.headerBlockTimeout,
      maxPingsPerSecond: limits.maxPingsPerSecond,
      maxSettingsPerSecond: limits.maxSettingsPerSecond,
      maxEmptyFramesPerSecond: limits.maxEmptyFramesPerSecond,
      maxResetsPerSecond: limits.maxResetsPerSecond,
      maxQueuedOutputBytes: limits.maxQueuedOutputBytes,
      settingsTimeoutMs: limits.settingsTimeout,
    },
  };
  if (tls) {
    listener.tls = {
      cert: read(tls.cert, 'listen.tls.cert'),
      key: read(tls.key, 'listen.tls.key'),
      ...(tls.clientCa ? { ca: read(tls.clientCa, 'listen.tls.clientCa'), requestCert: true } : {}),
    };
  }
  const upstreams: Record<string, ResolvedUpstream> = {
    default: resolveUpstream(config, '', config.baseDir, read),
  };
  for (const [name, upstream] of Object.entries(config.upstreams ?? {})) {
    upstreams[name] = resolveUpstream(upstream, `upstreams.${name}.`, config.baseDir, read);
  }
  return {
    proxy: {
      listen: listener,
      routes: config.routes?.map((route, index) => resolveRoute(route, index, read)),
      identity:
        config.identity === false || config.identity === undefined
          ? config.identity
          : {
              identityHeader: config.identity.header,
              trustedProxies: config.identity.trustedProxies,
            },
    },
    upstreams,
    workers: config.workers ?? availableParallelism(),
    graceMs: config.shutdown.grace,
    logLevel: config.log.level,
  };
}

function resolveUpstream(
  config: UpstreamConfig,
  prefix: string,
  baseDir: string,
  read: (file: string, key: string) => Buffer,
): ResolvedUpstream {
  const { upstream, admission, outlier, healthCheck } = config;
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
  const tls = upstream.tls;
  if (tls) {
    pool.tls = {
      ...(tls.ca ? { ca: read(tls.ca, `${prefix}upstream.tls.ca`) } : {}),
      ...(tls.cert ? { cert: read(tls.cert, `${prefix}upstream.tls.cert`) } : {}),
      ...(tls.key ? { key: read(tls.key, `${prefix}upstream.tls.key`) } : {}),
      ...(tls.serverName ? { servername: tls.serverName } : {}),
    };
  }
  return {
    options: {
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
      healthCheck: healthCheck && {
        service: healthCheck.service,
        intervalMs: healthCheck.interval,
        timeoutMs: healthCheck.timeout,
      },
    },
    discovery: withPathsFrom(baseDir, config.discovery),
  };
}

function resolveRoute(
  route: RouteConfig,
  index: number,
  read: (file: string, key: string) => Buffer,
): RouteDefinition {
  const { retry, hedging, retryBudget, authorization } = route;
  const key = `routes[${index}].authorization`;
  return {
    name: route.name,
    methods: route.methods,
    upstream: route.upstream,
    timeoutMs: route.timeout,
    idempotent: route.idempotent,
    retry: retry && {
      maxAttempts: retry.maxAttempts,
      codes: retry.codes,
      baseDelayMs: retry.baseDelay,
      maxDelayMs: retry.maxDelay,
      bufferLimitBytes: retry.bufferLimit,
    },
    hedging: hedging && { maxAttempts: hedging.maxAttempts, delayMs: hedging.delay },
    retryBudget: retryBudget && {
      ttlMs: retryBudget.ttl,
      minRetriesPerSecond: retryBudget.minPerSecond,
      retryRatio: retryBudget.ratio,
    },
    authorization:
      typeof authorization === 'string'
        ? policyFile(read(authorization, key).toString('utf8'), authorization)
        : (authorization as AuthorizationPolicy | undefined),
  };
}

/** A policy file a route names, compiled; its errors name the policy file and key. */
function policyFile(text: string, file: string) {
  try {
    return parseAuthorizationPolicy(text, file);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** Files a discovery section names are, like TLS files, relative to the config file. */
function withPathsFrom(baseDir: string, discovery: DiscoveryConfig): DiscoveryConfig {
  if (discovery.type === 'file') return { ...discovery, path: resolve(baseDir, discovery.path) };
  if (discovery.type === 'kubernetes' && discovery.kubeconfig !== undefined) {
    return { ...discovery, kubeconfig: resolve(baseDir, discovery.kubeconfig) };
  }
  return discovery;
}
