#!/usr/bin/env node
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ConfigError, loadConfigFile, resolveConfig, validateConfig } from './config.js';
import { serve } from './serve.js';
import { superviseWorkers } from './workers.js';

const USAGE = `Usage: proxy-kit --config proxy.yaml
       proxy-kit --upstream host:port[,host:port…] [options]

Options (each overrides the config file):
  --config <file>       YAML configuration (see the README for every key)
  --listen <host:port>  where clients connect (default 127.0.0.1:4140)
  --upstream <list>     static upstream endpoints, comma-separated
  --balancer <name>     p2c-ewma (default) | p2c-least-request | round-robin
  --workers <n>         proxy processes sharing the port (default: number of cores)
  --log-level <level>   fatal | error | warn | info (default) | debug | trace | silent
  --help                this text
`;

// Which flag set a top-level key, for error messages about flag values.
const FLAG_OF: Record<string, string> = {
  listen: '--listen',
  discovery: '--upstream',
  balancer: '--balancer',
  workers: '--workers',
  log: '--log-level',
};

function fail(message: string, code = 2): never {
  process.stderr.write(`proxy-kit: ${message}\n`);
  process.exit(code);
}

function configFromArgs(argv: string[]) {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      options: {
        config: { type: 'string' },
        listen: { type: 'string' },
        upstream: { type: 'string' },
        balancer: { type: 'string' },
        workers: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (error) {
    fail(`${(error as Error).message}\n\n${USAGE}`);
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>;
  if (flags.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const overrides: Record<string, unknown> = {};
  if (typeof flags.listen === 'string') overrides.listen = flags.listen;
  if (typeof flags.balancer === 'string') overrides.balancer = flags.balancer;
  if (typeof flags['log-level'] === 'string') overrides.log = { level: flags['log-level'] };
  if (typeof flags.workers === 'string') {
    overrides.workers = /^\d+$/.test(flags.workers) ? Number(flags.workers) : flags.workers;
  }
  if (typeof flags.upstream === 'string') {
    const endpoints = flags.upstream
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    overrides.discovery = { type: 'static', endpoints };
  }
  if (typeof flags.config === 'string') return loadConfigFile(flags.config, overrides);
  if (overrides.discovery === undefined) fail(`give --config or --upstream\n\n${USAGE}`);
  return validateConfig(overrides, { where: (key) => FLAG_OF[String(key[0])] ?? 'flags' });
}

async function main(): Promise<void> {
  let config: ReturnType<typeof resolveConfig>;
  try {
    config = resolveConfig(configFromArgs(process.argv.slice(2)));
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  const logger = pino({
    level: config.logLevel,
    base: { pid: process.pid, ...(cluster.isWorker ? { worker: cluster.worker?.id } : {}) },
  });
  if (config.workers > 1 && cluster.isPrimary) {
    superviseWorkers(config.workers, config.graceMs, logger);
    return;
  }
  try {
    await serve(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'proxy failed to start');
    logger.flush();
    process.exit(1);
  }
}

void main();
