import cluster, { type Worker } from 'node:cluster';
import { exponentialBackoff } from '@switchyard/core';
import type { Logger } from 'pino';

/**
 * The primary of `--workers N`: forks N proxy processes sharing the listening port (node:cluster
 * hands accepted connections to them in turn), replaces a worker that dies (with backoff if it
 * keeps dying), passes SIGHUP on (a reload), and on SIGTERM or SIGINT passes the signal on and
 * exits once every worker has finished its graceful shutdown.
 */
export function superviseWorkers(count: number, graceMs: number, logger: Logger): void {
  let stopping = false;
  let failed = false;
  let exitCode = 1;
  const listening = new WeakSet<Worker>();
  const startedAt = new WeakMap<Worker, number>();
  // A worker that keeps dying soon after starting is replaced ever more slowly.
  const backoff = exponentialBackoff({ baseMs: 100, maxMs: 10_000, jitter: 0.2 });
  let quickDeaths = 0;
  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker, performance.now());
    worker.on('listening', () => listening.add(worker));
  };

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (code !== 0) failed = true;
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(failed ? exitCode : 0);
      return;
    }
    if (!listening.has(worker)) {
      // It never served: a port in use or a bad certificate would kill every replacement too.
      logger.fatal({ worker: worker.id, code, signal }, 'worker failed to start');
      stopping = failed = true;
      // Exit code 2 (the worker's own for a port in use, a bad certificate) is passed on.
      if (code === 2) exitCode = 2;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode);
      return;
    }
    const lived = performance.now() - (startedAt.get(worker) ?? 0);
    quickDeaths = lived < 10_000 ? quickDeaths + 1 : 0;
    const delayMs = quickDeaths === 0 ? 0 : Math.round(backoff(quickDeaths - 1));
    logger.error(
      { worker: worker.id, code, signal, delayMs },
      'worker died; starting a replacement',
    );
    setTimeout(() => {
      if (!stopping) fork();
    }, delayMs);
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, workers: count }, 'stopping workers');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
    // A worker stuck past its grace period is not allowed to hold the shutdown forever.
    setTimeout(() => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    }, graceMs + 5_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Each worker reloads its own configuration (it watches the file too); SIGHUP's default
  // would end the primary instead.
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });

  for (let i = 0; i < count; i++) fork();
}
