#!/usr/bin/env node
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { pino, stdTimeFunctions } from 'pino';
import {
  ConfigError,
  loadConfigFile,
  type ProxyConfig,
  resolveConfig,
  validateConfig,
} from './config.js';
import { StartupError, serve } from './serve.js';
import { superviseWorkers } from './workers.js';

const USAGE = `Usage: proxy-kit --config proxy.yaml
       proxy-kit --upstream host:port[,host:port…] [options]
       proxy-kit stat [--admin host:port] [--once] [--json]

Options (each overrides the config file):
  --config <file>       YAML configuration (see the README for every key)
  --listen <host:port>  where clients connect (default 127.0.0.1:4140)
  --upstream <list>     static upstream endpoints, comma-separated
  --balancer <name>     p2c-ewma (default) | p2c-least-request | round-robin
  --workers <n>         proxy processes sharing the port (default: number of cores)
  --log-level <level>   fatal | error | warn | info (default) | debug | trace | silent
  --admin <host:port>   admin listener: /metrics /live /ready /endpoints /routes /config
                        (off unless given; loopback only unless the host says otherwise)
  --access-log <rate>   an access log line per call for this share of calls (0-1), and
                        for every failed call
  --help                this text

The config file is read again on SIGHUP and when it changes; an invalid one is rejected
and the running configuration stays in force.
`;

// Which flag set a top-level key, for error messages about flag values.
const FLAG_OF: Record<string, string> = {
  listen: '--listen',
  discovery: '--upstream',
  balancer: '--balancer',
  workers: '--workers',
  log: '--log-level',
  admin: '--admin',
  accessLog: '--access-log',
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
        admin: { type: 'string' },
        'access-log': { type: 'string' },
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
  if (typeof flags.admin === 'string') overrides.admin = flags.admin;
  if (typeof flags['access-log'] === 'string') {
    const rate = flags['access-log'];
    overrides.accessLog = { sampleRate: /^\d*\.?\d+$/.test(rate) ? Number(rate) : rate };
  }
  const file = typeof flags.config === 'string' ? flags.config : undefined;
  if (file === undefined && overrides.discovery === undefined) {
    fail(`give --config or --upstream\n\n${USAGE}`);
  }
  const load = () =>
    file !== undefined
      ? loadConfigFile(file, overrides)
      : validateConfig(overrides, { where: (key) => FLAG_OF[String(key[0])] ?? 'flags' });
  return { load, file };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === 'stat') {
    await (await import('./stat.js')).statCommand(argv.slice(1));
    return;
  }
  const { load, file } = configFromArgs(argv);
  let raw: ProxyConfig;
  let config: ReturnType<typeof resolveConfig>;
  try {
    raw = load();
    config = resolveConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  // The admin reports one process's balancers, so with it the default is one worker; more
  // workers, each with its own balancer state, would each need an admin of their own.
  const { admin } = config;
  const workers = admin !== undefined && raw.workers === undefined ? 1 : config.workers;
  if (admin !== undefined && workers > 1) {
    fail(
      `admin needs workers: 1 (got ${workers}): each worker balances on its own, and one admin ` +
        'listener would show one of them; run one proxy-kit per core instead',
    );
  }
  const logger = pino({
    level: config.logLevel,
    // ISO times and level names: what an operator reads, and what log shippers parse.
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    base: { pid: process.pid, ...(cluster.isWorker ? { worker: cluster.worker?.id } : {}) },
  });
  if (workers > 1 && cluster.isPrimary) {
    superviseWorkers(workers, config.graceMs, logger);
    return;
  }
  try {
    await serve(config, logger, {
      admin,
      shownConfig: raw,
      reload: () => {
        const next = load();
        return { config: resolveConfig(next), shown: next };
      },
      watch: file,
    });
  } catch (error) {
    // Start-up failures the operator can fix get one line and exit code 2, like a bad config.
    // (TelemetryConfigError by name: importing the class would load the SDK into every proxy.)
    if (
      error instanceof StartupError ||
      error instanceof ConfigError ||
      (error as Error).name === 'TelemetryConfigError'
    ) {
      fail((error as Error).message);
    }
    logger.fatal({ err: error }, 'proxy failed to start');
    logger.flush();
    process.exit(1);
  }
}

void main();
