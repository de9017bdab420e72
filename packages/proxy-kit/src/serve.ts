import { createDiscovery } from '@switchyard/discovery';
import type { Logger } from 'pino';
import type { ResolvedConfig } from './config.js';
import { startProxy } from './proxy.js';

/**
 * Runs one proxy process until SIGTERM or SIGINT, then shuts down gracefully — GOAWAY to
 * clients, calls in flight finish within the grace period — and exits 0.
 */
export async function serve(config: ResolvedConfig, logger: Logger): Promise<void> {
  const discovery = createDiscovery(config.discovery, {
    onError: (error) => logger.warn({ err: error }, 'discovery failed; keeping the last endpoints'),
  });
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  try {
    proxy = await startProxy({
      ...config.proxy,
      discovery,
      healthCheck: config.healthCheck,
      logger,
    });
  } catch (error) {
    await discovery.close();
    throw error;
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.graceMs }, 'shutting down');
    await proxy.close(config.graceMs);
    await discovery.close();
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
