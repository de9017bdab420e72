import { createDiscovery } from '@switchyard/discovery';
import type { Logger } from 'pino';
import type { ResolvedConfig } from './config.js';
import { startProxy } from './proxy.js';

/**
 * Runs one proxy process until SIGTERM or SIGINT, then shuts down gracefully — GOAWAY to
 * clients, calls in flight finish within the grace period — and exits 0.
 */
export async function serve(config: ResolvedConfig, logger: Logger): Promise<void> {
  // Tracing and metrics go where the OTEL_* variables say, as in the apps; none without them.
  // Loaded only then: the SDK is several megabytes of a proxy's memory.
  const telemetry = telemetryConfigured(process.env)
    ? await (await import('@switchyard/telemetry')).startTelemetry({ prometheus: false })
    : undefined;
  const discoveries = Object.entries(config.upstreams).map(([name, upstream]) => ({
    name,
    upstream,
    discovery: createDiscovery(upstream.discovery, {
      onError: (error) =>
        logger.warn({ err: error, upstream: name }, 'discovery failed; keeping the last endpoints'),
    }),
  }));
  const closeDiscovery = () => Promise.all(discoveries.map(({ discovery }) => discovery.close()));
  const [main, ...named] = discoveries;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  try {
    proxy = await startProxy({
      ...config.proxy,
      ...main!.upstream.options,
      discovery: main!.discovery,
      upstreams: Object.fromEntries(
        named.map(({ name, upstream, discovery }) => [name, { ...upstream.options, discovery }]),
      ),
      logger,
    });
  } catch (error) {
    await closeDiscovery();
    await telemetry?.shutdown();
    throw error;
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.graceMs }, 'shutting down');
    await proxy.close(config.graceMs);
    await closeDiscovery();
    // Spans and metrics still buffered are exported before the process goes.
    await telemetry?.shutdown();
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
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
