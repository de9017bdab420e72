import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { BALANCER_NAMES } from '@switchyard/balancer';
import {
  configIssueMessage,
  formatKeyPath,
  locateConfigIssues,
  parseKeyPath,
  statusFromName,
} from '@switchyard/core';
import {
  type DiscoveryConfig,
  discoveryConfigSchema,
  durationSchema as duration,
  issuePath,
} from '@switchyard/discovery';
import {
  type AuthorizationPolicy,
  compileAuthorizationPolicy,
  PolicyConfigError,
  parseAuthorizationPolicy,
} from '@switchyard/middleware-identity/interceptors';
import * as v from 'valibot';
import type { AccessLogOptions } from './access-log.js';
import { DEFAULT_ADMIN_ADDRESS } from './admin.js';
import type { ConnectionPoolOptions } from './connection-pool.js';
import { type ListenerOptions, parseListenAddress } from './listener.js';
import type { ProxyOptions, RouteDefinition, UpstreamDefinition } from './proxy.js';

// Loaded on first use (synchronously: callers parse in line): a process that reads no YAML does
// not carry the parser, ≈7 MB resident.
const yaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml');

const listenAddress = v.pipe(
  v.string(),
  v.check(
    (text) => {
      try {
        parseListenAddress(text);
        return true;
      } catch {
        return false;
      }
    },
    (issue) => `"${issue.input}" is not host:port (IPv6 as [::1]:4140)`,
  ),
);

const positiveInt = v.pipe(v.number(), v.integer(), v.minValue(1));
const bytes = v.pipe(positiveInt, v.maxValue(2 ** 31 - 1));
const intRange = (min: number, max: number) =>
  v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));
const range = (min: number, max: number) => v.pipe(v.number(), v.minValue(min), v.maxValue(max));

const listenSchema = v.pipe(
  v.unknown(),
  v.transform((value) => (typeof value === 'string' ? { address: value } : value)),
  v.strictObject({
    address: listenAddress,
    tls: v.optional(
      v.strictObject({ cert: v.string(), key: v.string(), clientCa: v.optional(v.string()) }),
    ),
    maxConcurrentStreams: v.optional(positiveInt),
    streamWindowBytes: v.optional(bytes),
    connectionWindowBytes: v.optional(bytes),
    maxHeaderListBytes: v.optional(bytes),
    maxConnections: v.optional(positiveInt),
    maxConcurrentCalls: v.optional(positiveInt),
    maxRequestMessageBytes: v.optional(bytes),
    handshakeTimeout: v.optional(duration),
    idleTimeout: v.optional(duration),
    limits: v.optional(
      v.strictObject({
        maxHeaderBlockBytes: v.optional(bytes),
        maxContinuationFrames: v.optional(positiveInt),
        headerBlockTimeout: v.optional(duration),
        maxPingsPerSecond: v.optional(positiveInt),
        maxSettingsPerSecond: v.optional(positiveInt),
        maxEmptyFramesPerSecond: v.optional(positiveInt),
        maxResetsPerSecond: v.optional(positiveInt),
        maxQueuedOutputBytes: v.optional(bytes),
        settingsTimeout: v.optional(duration),
      }),
    ),
  }),
);

const statusCode = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const code = statusFromName(dataset.value);
    if (code !== undefined) return code;
    addIssue({ message: `"${dataset.value}" is not a gRPC status name` });
    return NEVER;
  }),
);

const methodGlob = v.pipe(
  v.string(),
  v.regex(
    /^\/?(\*\*|[^/\s]+\/[^/\s]+)$/,
    "expected 'package.Service/Method' (globs allowed) or '**'",
  ),
);

const routeSchema = v.pipe(
  v.strictObject({
    name: v.optional(v.string()),
    methods: v.pipe(v.array(methodGlob), v.minLength(1, 'needs at least one method')),
    upstream: v.optional(v.string(), 'default'),
    timeout: v.optional(duration),
    idempotent: v.optional(v.boolean(), false),
    retry: v.optional(
      v.strictObject({
        maxAttempts: v.optional(intRange(0, 10)),
        codes: v.optional(v.array(statusCode)),
        baseDelay: v.optional(duration),
        maxDelay: v.optional(duration),
        bufferLimit: v.optional(bytes),
      }),
    ),
    hedging: v.optional(
      v.strictObject({ maxAttempts: intRange(1, 10), delay: v.optional(duration) }),
    ),
    retryBudget: v.optional(
      v.strictObject({
        ttl: v.optional(duration),
        minPerSecond: v.optional(v.pipe(v.number(), v.minValue(0))),
        ratio: v.optional(range(0, 1)),
      }),
    ),
    // Inline rules, or the path of a policy file (YAML or JSON), as middleware-identity reads it.
    authorization: v.optional(v.union([v.string(), v.record(v.string(), v.unknown())])),
    maxConcurrentCalls: v.optional(positiveInt),
    maxRequestMessageBytes: v.optional(bytes),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const route = dataset.value;
    if (typeof route.authorization === 'object') {
      try {
        compileAuthorizationPolicy(route.authorization as unknown as AuthorizationPolicy);
      } catch (error) {
        if (!(error instanceof PolicyConfigError)) throw error;
        addIssue({
          message: error.message.replace(/^authorization policy: (?:[^:]+: )?/, ''),
          path: issuePath(route, ['authorization', ...parseKeyPath(error.key)]),
        });
      }
    }
    for (const key of ['retry', 'hedging'] as const) {
      if (route[key] !== undefined && !route.idempotent) {
        addIssue({
          message: `${key} needs idempotent: true (only idempotent methods may be sent twice)`,
          path: issuePath(route, [key]),
        });
      }
    }
  }),
);

const upstreamSchema = v.optional(
  v.strictObject({
    tls: v.optional(
      v.strictObject({
        ca: v.optional(v.string()),
        cert: v.optional(v.string()),
        key: v.optional(v.string()),
        serverName: v.optional(v.string()),
      }),
    ),
    connectTimeout: v.optional(duration),
    keepalive: v.optional(
      v.strictObject({ interval: v.optional(duration), timeout: v.optional(duration) }),
    ),
    maxConnectionsPerEndpoint: v.optional(v.pipe(positiveInt, v.maxValue(64))),
    maxStreamsPerConnection: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
    streamWindowBytes: v.optional(bytes),
    connectionWindowBytes: v.optional(bytes),
    reconnect: v.optional(
      v.strictObject({ base: v.optional(duration), max: v.optional(duration) }),
    ),
  }),
  {},
);

const admissionSchema = v.optional(
  v.strictObject({ queueCapacity: v.optional(positiveInt), failfast: v.optional(duration) }),
  {},
);

const outlierSchema = v.optional(
  v.strictObject({
    consecutiveFailures: v.optional(positiveInt),
    baseEjection: v.optional(duration),
    maxEjection: v.optional(duration),
    maxEjectedPercent: v.optional(range(0, 100)),
  }),
  {},
);

const healthCheckSchema = v.optional(
  v.strictObject({
    service: v.optional(v.string(), ''),
    interval: v.optional(duration),
    timeout: v.optional(duration),
  }),
);

const balancerSchema = v.optional(v.picklist(BALANCER_NAMES), 'p2c-ewma');

const adminSchema = v.optional(
  v.pipe(
    v.unknown(),
    v.transform((value) => (typeof value === 'string' ? { address: value } : value)),
    v.strictObject({ address: v.optional(listenAddress, DEFAULT_ADMIN_ADDRESS) }),
  ),
);

const accessLogSchema = v.optional(
  v.strictObject({
    sampleRate: v.optional(range(0, 1)),
    failuresAlways: v.optional(v.boolean()),
    slowerThan: v.optional(duration),
    methods: v.optional(v.array(methodGlob)),
  }),
);

/** One named upstream of `upstreams:`: the keys of the top-level one. */
const namedUpstreamSchema = v.strictObject({
  discovery: discoveryConfigSchema,
  balancer: balancerSchema,
  upstream: upstreamSchema,
  admission: admissionSchema,
  outlier: outlierSchema,
  healthCheck: healthCheckSchema,
});

/** The YAML file's shape; every key is optional except `discovery` (or `--upstream`). */
export const proxyConfigSchema = v.pipe(
  v.strictObject({
    listen: v.optional(listenSchema, '127.0.0.1:4140'),
    workers: v.optional(v.pipe(positiveInt, v.maxValue(256))),
    balancer: balancerSchema,
    discovery: discoveryConfigSchema,
    upstreams: v.optional(
      v.record(
        v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a name like "orders"')),
        namedUpstreamSchema,
      ),
    ),
    routes: v.optional(v.array(routeSchema)),
    identity: v.optional(
      v.union([
        v.literal(false),
        v.strictObject({
          header: v.optional(v.string()),
          trustedProxies: v.optional(v.array(v.pipe(v.string(), v.minLength(1)))),
        }),
      ]),
    ),
    upstream: upstreamSchema,
    admission: admissionSchema,
    outlier: outlierSchema,
    healthCheck: healthCheckSchema,
    shutdown: v.optional(v.strictObject({ grace: v.optional(duration, '10s') }), {}),
    admin: adminSchema,
    accessLog: accessLogSchema,
    log: v.optional(
      v.strictObject({
        level: v.optional(
          v.picklist(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
          'info',
        ),
      }),
      {},
    ),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const config = dataset.value;
    config.routes?.forEach((route, index) => {
      if (route.upstream !== 'default' && config.upstreams?.[route.upstream] === undefined) {
        addIssue({
          message: `no upstream named "${route.upstream}" (upstreams: default${Object.keys(
            config.upstreams ?? {},
          )
            .map((name) => `, ${name}`)
            .join('')})`,
          path: issuePath(config, ['routes', index, 'upstream']),
        });
      }
    });
  }),
);

/** A validated configuration, with file paths resolved against the config file's directory. */
export type ProxyConfig = v.InferOutput<typeof proxyConfigSchema> & {
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
  const { LineCounter, parseDocument } = yaml();
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
  const result = v.safeParse(proxyConfigSchema, input, { message: configIssueMessage });
  if (result.success) return { ...result.output, baseDir, source };
  const lines = locateConfigIssues(result.issues).map(
    ({ key, issue }) => `${where(key)}: ${formatKeyPath(key) || '(top level)'}: ${issue.message}`,
  );
  throw new ConfigError(lines.join('\n'));
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
  /** The admin listener; none when absent. */
  admin: { address: string } | undefined;
}

type UpstreamConfig = v.InferOutput<typeof namedUpstreamSchema>;
type RouteConfig = v.InferOutput<typeof routeSchema>;

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
  const {
    tls,
    handshakeTimeout,
    idleTimeout,
    limits,
    maxConcurrentCalls,
    maxRequestMessageBytes,
    ...listenRest
  } = listen;
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
      maxConcurrentCalls,
      maxRequestMessageBytes,
      accessLog: config.accessLog && accessLogOptions(config.accessLog),
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
    admin: config.admin,
  };
}

function accessLogOptions(
  config: NonNullable<v.InferOutput<typeof accessLogSchema>>,
): AccessLogOptions {
  const { slowerThan, ...rest } = config;
  return { ...rest, slowerThanMs: slowerThan };
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
    maxConcurrentCalls: route.maxConcurrentCalls,
    maxRequestMessageBytes: route.maxRequestMessageBytes,
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
