import { createDiscovery, type Discovery } from '@switchyard/discovery';
import type { Logger } from 'pino';
import type { AdminMetrics } from './admin-metrics.js';
import type { ResolvedConfig } from './config.js';
import { type ReloadOptions, type RunningProxy, startProxy } from './proxy.js';

/** What the binary adds to a configuration: operators' tools. */
export interface ServeOptions {
  /** The admin listener (`/metrics`, `/ready`, `/endpoints`…); none when absent. */
  admin?: { address: string };
  /** What `/config` shows as the configuration in force (redacted there). */
  shownConfig?: unknown;
  /**
   * Reads the configuration again, for a reload on SIGHUP (and on `watch`'s changes). Throws
   * `ConfigError` for an invalid one, which is then rejected and the old one kept.
   */
  reload?: () => { config: ResolvedConfig; shown: unknown };
  /** A file whose changes reload the configuration: the config file. */
  watch?: string;
}

/** A start-up failure, one line for the operator: what could not be done, and why. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/**
 * Runs one proxy process until SIGTERM or SIGINT, then shuts down gracefully — GOAWAY to
 * clients, calls in flight finish within the grace period — and exits 0.
 * @throws StartupError when the listener or the admin listener cannot be opened
 */
export async function serve(
  config: ResolvedConfig,
  logger: Logger,
  options: ServeOptions = {},
): Promise<void> {
  const sdk = telemetryConfigured(process.env);
  // The admin's metrics first: the pipeline's metrics layers are built on its meter provider.
  // Loaded only when asked for: the metrics SDK is megabytes of an idle proxy's memory.
  const metrics: AdminMetrics | undefined = options.admin
    ? await (await import('./admin.js')).createAdminMetrics({ sdk })
    : undefined;
  // Tracing and metrics go where the OTEL_* variables say, as in the apps; none without them.
  // Loaded only then: the SDK is several megabytes of a proxy's memory.
  const telemetry = sdk ? await startSdk(metrics) : undefined;
  let shown = options.shownConfig;
  let lastReload: { at: string; ok: boolean; error?: string } | undefined;
  let discoveries = startDiscoveries(config, logger);
  let proxy: RunningProxy;
  try {
    proxy = await startProxy({
      ...config.proxy,
      ...proxyOptions(config, discoveries),
      listen: config.proxy.listen,
      logger,
      meterProvider: metrics?.meterProvider ?? telemetry?.meterProvider,
      stats: metrics?.stats,
    });
  } catch (error) {
    await closeAll(discoveries);
    await telemetry?.shutdown().catch(() => {});
    throw startupError('listen', describe(config.proxy.listen), error);
  }
  let admin: Awaited<ReturnType<typeof import('./admin.js')['startAdmin']>> | undefined;
  if (options.admin && metrics) {
    metrics.observe(proxy);
    const { startAdmin } = await import('./admin.js');
    try {
      admin = await startAdmin(proxy, {
        address: options.admin.address,
        metrics,
        config: () => ({ config: shown, lastReload }),
      });
    } catch (error) {
      await proxy.close(0);
      await closeAll(discoveries);
      throw startupError('admin', options.admin.address, error);
    }
    logger.info({ address: `${admin.address.address}:${admin.address.port}` }, 'admin listening');
  }

  let stopping = false;
  const rejected = (trigger: string, error: unknown) => {
    const message = (error as Error).message;
    lastReload = { at: new Date().toISOString(), ok: false, error: message };
    logger.error({ trigger, error: message }, 'configuration rejected; the old one stays in force');
  };
  const reload = async (trigger: string) => {
    if (stopping || !options.reload) return;
    let next: { config: ResolvedConfig; shown: unknown };
    try {
      next = options.reload();
    } catch (error) {
      rejected(trigger, error);
      return;
    }
    const restartOnly = unreloadable(config, next.config);
    if (restartOnly.length > 0) {
      logger.warn({ keys: restartOnly }, 'these settings change only on a restart');
    }
    if (next.config.logLevel !== logger.level) logger.level = next.config.logLevel;
    const fresh = startDiscoveries(next.config, logger);
    try {
      await proxy.reload(proxyOptions(next.config, fresh), config.graceMs);
    } catch (error) {
      await closeAll(fresh);
      rejected(trigger, error);
      return;
    }
    // The old pipeline's endpoints drain on their own; its discoveries are no longer read.
    const old = discoveries;
    discoveries = fresh;
    config = { ...next.config, proxy: { ...next.config.proxy, listen: config.proxy.listen } };
    shown = next.shown;
    lastReload = { at: new Date().toISOString(), ok: true };
    logger.info(
      {
        trigger,
        upstreams: Object.keys(next.config.upstreams),
        routes: next.config.proxy.routes?.length ?? 1,
      },
      'configuration reloaded',
    );
    setTimeout(() => void closeAll(old), config.graceMs).unref();
  };
  // One reload at a time, the latest request last: a burst of file events is one reload.
  let queued: Promise<void> = Promise.resolve();
  const requestReload = (trigger: string) => {
    queued = queued.then(() => reload(trigger));
  };
  process.on('SIGHUP', () => requestReload('SIGHUP'));
  const unwatch = options.watch
    ? await watchFile(options.watch, () => requestReload('file changed'))
    : undefined;

  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    unwatch?.();
    logger.info({ signal, graceMs: config.graceMs }, 'shutting down');
    await proxy.close(config.graceMs);
    await admin?.close();
    await closeAll(discoveries);
    // Spans and metrics still buffered are exported before the process goes; a collector that
    // is down costs them, not the clean exit the drain earned.
    await telemetry?.shutdown().catch((err: unknown) => {
      logger.warn(
        { err },
        'telemetry: the last export failed; spans and metrics still buffered are lost',
      );
    });
    await metrics?.shutdown();
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

interface NamedDiscovery {
  name: string;
  discovery: Discovery;
}

function startDiscoveries(config: ResolvedConfig, logger: Logger): NamedDiscovery[] {
  return Object.entries(config.upstreams).map(([name, upstream]) => ({
    name,
    discovery: createDiscovery(upstream.discovery, {
      onError: (error) =>
        logger.warn({ err: error, upstream: name }, 'discovery failed; keeping the last endpoints'),
    }),
  }));
}

function closeAll(discoveries: readonly NamedDiscovery[]): Promise<unknown> {
  return Promise.all(discoveries.map(({ discovery }) => discovery.close()));
}

/** The library options of `config`'s routes and upstreams, over running discoveries. */
function proxyOptions(
  config: ResolvedConfig,
  discoveries: readonly NamedDiscovery[],
): ReloadOptions {
  const { listen: _, ...proxy } = config.proxy;
  const [main, ...named] = discoveries;
  return {
    ...proxy,
    ...config.upstreams[main!.name]!.options,
    discovery: main!.discovery,
    upstreams: Object.fromEntries(
      named.map(({ name, discovery }) => [name, { ...config.upstreams[name]!.options, discovery }]),
    ),
  };
}

/** Settings a reload cannot change in a running process, that differ in `next`. */
function unreloadable(current: ResolvedConfig, next: ResolvedConfig): string[] {
  const changed: string[] = [];
  if (JSON.stringify(current.proxy.listen) !== JSON.stringify(next.proxy.listen))
    changed.push('listen');
  if (current.workers !== next.workers) changed.push('workers');
  if (current.admin?.address !== next.admin?.address) changed.push('admin');
  return changed;
}

/**
 * Calls `changed` when `path` is written or replaced. The directory is watched, not the file:
 * an editor's or a ConfigMap's atomic save replaces the file, and a watch on the old one would
 * hear nothing more. Events within 100 ms are one change.
 */
async function watchFile(path: string, changed: () => void): Promise<() => void> {
  const { watch } = await import('node:fs');
  const { basename, dirname } = await import('node:path');
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(path), (_, file) => {
    if (file !== null && file !== name) return;
    clearTimeout(timer);
    timer = setTimeout(changed, 100);
  });
  watcher.unref();
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}

/** `host:port` of listener options. */
function describe(listen: ResolvedConfig['proxy']['listen']): string {
  return typeof listen === 'string' ? listen : listen.address;
}

/** One line that says what failed at start-up: the address in use, the unusable certificate. */
function startupError(what: 'listen' | 'admin', address: string, error: unknown): Error {
  const { code, message } = error as NodeJS.ErrnoException;
  const reason =
    code === 'EADDRINUSE'
      ? 'address already in use'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'EADDRNOTAVAIL'
          ? 'address not available on this host'
          : undefined;
  if (reason) return new StartupError(`${what}: cannot listen on ${address}: ${reason}`);
  if (what === 'listen' && /PEM|certificate|key|SSL|TLS|OSSL/i.test(`${code} ${message}`)) {
    return new StartupError(`listen.tls: cannot use the certificate or key: ${message}`);
  }
  if (error instanceof SyntaxError || error instanceof TypeError) {
    return new StartupError(`${what}: ${message}`);
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** Whether the environment asks for an exporter: an endpoint, or traces or metrics to export. */
function telemetryConfigured(env: NodeJS.ProcessEnv): boolean {
  return Object.keys(env).some(
    (key) =>
      key === 'OTEL_TRACES_EXPORTER' ||
      key === 'OTEL_METRICS_EXPORTER' ||
      /^OTEL_EXPORTER_OTLP_(?:\w+_)?ENDPOINT$/.test(key),
  );
}

/**
 * The OpenTelemetry SDK as the OTEL_* variables configure it, with the admin's reader when there
 * is one. Its `meterProvider` is for the pipeline: the SDK's, except that histograms are kept
 * beside it (the admin's own, when there is an admin) — three per call cost ~1 µs each in the SDK.
 */
async function startSdk(admin: AdminMetrics | undefined) {
  const { startTelemetry, preaggregatedHistograms } = await import('@switchyard/telemetry');
  const histograms = admin?.histograms ?? preaggregatedHistograms();
  const telemetry = await startTelemetry({
    prometheus: false,
    metricReaders: admin ? [admin.reader] : [],
    histograms,
  });
  return {
    meterProvider: histograms.meterProvider(),
    shutdown: () => telemetry.shutdown(),
  };
}
