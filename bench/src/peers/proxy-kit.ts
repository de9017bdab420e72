import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROXY_KIT_NODE_FLAGS } from '@switchyard/proxy-kit/node-flags';
import { startOtlpSink } from '../otlp-sink.js';
import { freePort, spawnListening } from '../processes.js';
import type { ProxyPeer, RunningProxy } from './proxy-peer.js';

/** The package directory of `@switchyard/proxy-kit`, found from its entry point. */
function packageDir(): string | undefined {
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve('@switchyard/proxy-kit')));
    while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
    return dir;
  } catch {
    return undefined;
  }
}

function binary(): { cli: string; version: string } | undefined {
  const dir = packageDir();
  if (dir === undefined) return undefined;
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const cli = join(dir, manifest.bin?.['proxy-kit'] ?? 'dist/cli.js');
  return existsSync(cli) ? { cli, version: manifest.version } : undefined;
}

/** The real `proxy-kit` binary as a child process, `--workers 1` like the peers' one core. */
export const proxyKit: ProxyPeer = {
  name: 'proxy-kit',
  policies: ['p2c-ewma', 'p2c-least-request', 'round-robin'],
  probe,
  start: (upstreams, policy) => startPassThrough(upstreams, policy, []),
};

/** How often {@link proxyKitAdmin}'s /metrics is scraped: Prometheus' default is every 15 s. */
const SCRAPE_INTERVAL_MS = 1_000;

/**
 * The same pass-through with the admin listener on (issue 20): every call recorded in the
 * per-route and per-endpoint instruments, and /metrics scraped every second while it runs, so
 * its rows against {@link proxyKit}'s are the cost of the admin's additions.
 */
export const proxyKitAdmin: ProxyPeer = {
  name: 'proxy-kit, admin + /metrics',
  policies: ['p2c-ewma'],
  probe,
  async start(upstreams, policy) {
    const adminPort = await freePort();
    const running = await startPassThrough(upstreams, policy, [
      '--admin',
      `127.0.0.1:${adminPort}`,
    ]);
    const scrape = setInterval(() => {
      fetch(`http://127.0.0.1:${adminPort}/metrics`)
        .then((response) => response.text())
        .catch(() => undefined); // a scrape that fails shows as a gap, as in Prometheus
    }, SCRAPE_INTERVAL_MS);
    return {
      ...running,
      async stop() {
        clearInterval(scrape);
        await running.stop();
      },
    };
  },
};

async function startPassThrough(
  upstreams: readonly string[],
  policy: string,
  extra: readonly string[],
): Promise<RunningProxy> {
  const cli = built();
  const port = await freePort();
  const target = `127.0.0.1:${port}`;
  const running = await spawnListening(
    process.execPath,
    [
      ...PROXY_KIT_NODE_FLAGS,
      cli,
      '--listen',
      target,
      '--upstream',
      upstreams.join(','),
      '--balancer',
      policy,
      '--workers',
      '1',
      '--log-level',
      'warn',
      ...extra,
    ],
    port,
  );
  return { ...running, target };
}

/**
 * The same binary with its whole middleware pipeline at work (issue 18): a route with a
 * deadline for every call (so each carries a grpc-timeout and a timer), retries of an idempotent
 * method, metrics exported over OTLP every 5 s, and traces through a parent-based sampler that
 * samples 10% of root calls (every h2load call is one), batched to a local OTLP sink.
 */
export const proxyKitFull: ProxyPeer = {
  name: 'proxy-kit, full pipeline',
  policies: ['p2c-ewma'],
  probe,
  async start(upstreams, policy) {
    const cli = built();
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-proxy-kit-'));
    const sink = await startOtlpSink();
    const port = await freePort();
    const config = join(dir, 'proxy.yaml');
    writeFileSync(
      config,
      `listen: 127.0.0.1:${port}
workers: 1
balancer: ${policy}
discovery: { type: static, endpoints: [${upstreams.join(', ')}] }
routes:
  - methods: ["**"]
    timeout: 30s
    idempotent: true
    retry: { maxAttempts: 2, codes: [UNAVAILABLE] }
log: { level: warn }
`,
    );
    const running = await spawnListening(
      process.execPath,
      [...PROXY_KIT_NODE_FLAGS, cli, '--config', config],
      port,
      {
        env: {
          ...process.env,
          OTEL_SERVICE_NAME: 'proxy-kit',
          OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
          OTEL_TRACES_SAMPLER_ARG: '0.1',
          OTEL_METRICS_EXPORTER: 'otlp',
          OTEL_METRIC_EXPORT_INTERVAL: '5000',
          OTEL_LOGS_EXPORTER: 'none',
        },
      },
    );
    return {
      ...running,
      target: `127.0.0.1:${port}`,
      async stop() {
        await running.stop();
        await sink.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

function probe(): ReturnType<ProxyPeer['probe']> {
  const found = binary();
  return found
    ? { version: found.version }
    : { absent: 'not built yet: npx turbo run build --filter=@switchyard/proxy-kit' };
}

function built(): string {
  const found = binary();
  if (!found) throw new Error('proxy-kit is not built');
  return found.cli;
}
