/**
 * The Switchyard demo (`npm run demo`): three catalog backends with the full middleware stack
 * behind proxy-kit, a pricing service behind them, and a client driving load through the proxy
 * — all real processes on 127.0.0.1. A table shows, per backend, its share of the calls, and the
 * p50/p99 the client saw; one backend turns slow and its share falls, one is killed and the
 * others take over without a failed call; on the way, one call's deadline crosses three hops and
 * one call is retried. It ends with a summary, the Prometheus endpoints and a sampled trace.
 *
 * On a terminal the table refreshes in place; otherwise it is printed every two seconds. The last
 * line is the run's figures as JSON after `summary: `, for scripts (and the demo's test).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createCertificateAuthority, issueCertificate } from '@switchyard/certs';
import { deadlineMiddleware } from '@switchyard/middleware-deadline';
import { metricsClientMiddleware } from '@switchyard/middleware-metrics';
import { tracingClientMiddleware } from '@switchyard/middleware-tracing';
import { startTelemetry } from '@switchyard/telemetry';
import { ClientError, createChannel, createClientFactory, Status } from 'nice-grpc';
import { stringify } from 'yaml';
import { startTraceCollector, traceTree } from './collector.js';
import { CatalogDefinition, type Item } from './gen/demo/v1/catalog.js';
import { LoadStats, renderSnapshot } from './table.js';

const BACKENDS = ['backend-a', 'backend-b', 'backend-c'] as const;
const [, SLOW, KILLED] = BACKENDS;
const PROXY_ID = 'spiffe://demo.switchyard.dev/ns/demo/sa/proxy-kit';
/** The name in the backends' certificate, which proxy-kit verifies (they listen on 127.0.0.1). */
const BACKEND_HOST = 'catalog.demo.internal';
const WINDOW_MS = 2_000;
/** When things happen, in ms after the load starts. */
const AT = { deadlineCall: 1_500, retriedCall: 3_000, slow: 6_000, kill: 14_000, end: 22_000 };
const SLOW_MS = 200;
/** What proxy-kit logs (at warn) when it stops sending calls to an endpoint. */
const OUT_OF_ROTATION = new Set(['upstream connection failed', 'endpoint ejected']);
/** Callers in a loop, each pausing between calls: ~150 calls/s, light on a 2-core machine. */
const CALLERS = 6;
const PAUSE_MS = 30;
/** One load call in this many is traced: the sampling decision is the client's. */
const TRACE_ONE_IN = 50;

const tty = process.stdout.isTTY === true;
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const children: ChildProcess[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

/** Prints a line of the story; on a terminal, above the table. */
let say = (line: string) => console.log(line);
/** When the load started (`performance.now()`), and the time since as the table prints it. */
let start = performance.now();
const clock = () => `t=${((performance.now() - start) / 1000).toFixed(1)}s`;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-demo-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const collector = await startTraceCollector();
  cleanups.push(collector.close);

  // Every process exports its spans to the collector above and serves Prometheus on loopback.
  // Servers trace only what a client sampled (a ratio of 0 for calls without a sampled parent).
  const telemetryEnv = (service: string): NodeJS.ProcessEnv => ({
    ...process.env,
    OTEL_SERVICE_NAME: service,
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '200',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
    OTEL_EXPORTER_PROMETHEUS_PORT: '0',
  });

  // mTLS between proxy-kit and the backends, from a CA made for this run.
  const ca = await createCertificateAuthority({ commonName: 'Switchyard demo CA' });
  const serving = await issueCertificate(ca, { dnsNames: [BACKEND_HOST], usage: 'server' });
  const proxyCert = await issueCertificate(ca, { spiffeId: PROXY_ID, usage: 'client' });
  await Promise.all([
    writeFile(join(dir, 'ca.pem'), ca.certPem),
    writeFile(join(dir, 'cert.pem'), serving.chainPem),
    writeFile(join(dir, 'key.pem'), serving.keyPem, { mode: 0o600 }),
    writeFile(join(dir, 'proxy.pem'), proxyCert.chainPem),
    writeFile(join(dir, 'proxy-key.pem'), proxyCert.keyPem, { mode: 0o600 }),
  ]);

  const pricing = await startNode('pricing.js', telemetryEnv('pricing'));
  const backends = new Map<string, Started>();
  await Promise.all(
    BACKENDS.map(async (name) => {
      const env = { ...telemetryEnv(name), NAME: name, CERT_DIR: dir, CALLER: PROXY_ID };
      backends.set(name, await startNode('catalog.js', { ...env, PRICING: pricing.ready.address }));
    }),
  );
  const backendOf = new Map([...backends].map(([name, b]) => [b.ready.address, name]));

  // What the table shows per backend; when proxy-kit said it ejected one (from its log).
  const state = new Map<string, string>(BACKENDS.map((b) => [b, 'serving']));
  const ejectedAt = new Map<string, number>();
  let running = true;
  let phase = { name: 'steady', since: start };

  let proxyAdmin: string | undefined;

  // proxy-kit, the binary, with a config file as a user writes one.
  const config = {
    listen: '127.0.0.1:0',
    admin: '127.0.0.1:0', // /metrics, /endpoints, /ready…: the proxy's own view
    workers: 1,
    balancer: 'p2c-ewma',
    discovery: { type: 'static', endpoints: BACKENDS.map((n) => backends.get(n)?.ready.address) },
    upstream: {
      tls: { ca: 'ca.pem', cert: 'proxy.pem', key: 'proxy-key.pem', serverName: BACKEND_HOST },
      keepalive: { interval: '1s', timeout: '500ms' },
      reconnect: { base: '200ms', max: '2s' },
    },
    outlier: { consecutiveFailures: 3, baseEjection: '2s' },
    healthCheck: { interval: '1s', timeout: '500ms' },
    routes: [
      {
        methods: ['demo.v1.Catalog/*'],
        idempotent: true,
        timeout: '2s',
        retry: { maxAttempts: 2, codes: ['UNAVAILABLE'] },
      },
    ],
  };
  await writeFile(join(dir, 'proxy.yaml'), stringify(config));
  const proxyAddress = await startProxyKit(
    join(dir, 'proxy.yaml'),
    telemetryEnv('proxy-kit'),
    (log) => {
      if (log.msg === 'admin listening') proxyAdmin = `http://${log.address}`;
      const backend = backendOf.get(String(log.endpoint));
      // What proxy-kit says about the killed backend is the story; before, only its errors.
      const level = levelOf(log.level);
      const told = level >= 50 || (level >= 40 && phase.name === 'killed');
      if (backend === undefined || !told || !running) return;
      // An endpoint whose connection failed is not ready until it reconnects, and one the
      // outlier breaker ejected not until its ejection ends: either way proxy-kit sends it no
      // more calls. The demo marks the killed backend ejected at the first of the two.
      if (state.get(backend) === 'killed' && OUT_OF_ROTATION.has(String(log.msg))) {
        ejectedAt.set(backend, performance.now());
        state.set(backend, 'ejected');
      }
      say(`» ${clock()} proxy-kit: ${log.msg} (${backend})`);
    },
  );

  // The load client: this process, with its own metrics, and spans for the calls it samples.
  process.env.OTEL_SERVICE_NAME = 'demo-client';
  Object.assign(process.env, { ...telemetryEnv('demo-client'), OTEL_TRACES_SAMPLER: 'always_on' });
  const telemetry = await startTelemetry({ serviceName: 'demo-client' });
  cleanups.push(() => telemetry.shutdown());
  const channel = createChannel(proxyAddress);
  cleanups.push(async () => channel.close());
  const services = [CatalogDefinition];
  const metrics = metricsClientMiddleware({ services, target: proxyAddress });
  const client = createClientFactory()
    .use(deadlineMiddleware)
    .use(metrics)
    .create(CatalogDefinition, channel);
  const traced = createClientFactory()
    .use(deadlineMiddleware)
    .use(tracingClientMiddleware({ services, target: proxyAddress }))
    .use(metrics)
    .create(CatalogDefinition, channel);

  console.log(
    `Switchyard demo: a client → proxy-kit ${proxyAddress} → ${BACKENDS.join(', ')} → pricing`,
  );
  console.log(
    `  ${CALLERS} callers, one call each every ~${PAUSE_MS} ms; backend-b turns slow at ` +
      `${AT.slow / 1000} s, backend-c is killed at ${AT.kill / 1000} s, the end at ${AT.end / 1000} s\n`,
  );

  const stats = new LoadStats(BACKENDS, WINDOW_MS);
  start = performance.now();
  phase = { name: 'steady', since: start };
  let n = 0;
  const failures = new Map<string, number>();
  const callers = Array.from({ length: CALLERS }, async (_, i) => {
    await sleep(i * (PAUSE_MS / CALLERS));
    while (running) {
      const id = ++n;
      const sampled = id % TRACE_ONE_IN === 0;
      const began = performance.now();
      try {
        const item = await (sampled ? traced : client).getItem(
          { id: `item-${id}` },
          { deadline: 2_000 },
        );
        stats.record({
          at: performance.now(),
          backend: item.backend,
          ms: performance.now() - began,
          ok: true,
        });
      } catch (error) {
        stats.record({
          at: performance.now(),
          backend: undefined,
          ms: performance.now() - began,
          ok: false,
        });
        const reason =
          error instanceof ClientError ? `${Status[error.code]}: ${error.details}` : String(error);
        failures.set(reason, (failures.get(reason) ?? 0) + 1);
      }
      await sleep(PAUSE_MS);
    }
  });

  // The table: in place on a terminal, as plain snapshots otherwise.
  let drawn = 0;
  let drawnAt = 0;
  const draw = () => {
    drawnAt = performance.now();
    const lines = renderSnapshot(
      stats.snapshot(performance.now(), start, phase, (b) => state.get(b) ?? ''),
      WINDOW_MS,
    );
    if (tty) {
      process.stdout.write(`${drawn > 0 ? `\x1b[${drawn}A\x1b[J` : ''}${lines.join('\n')}\n`);
      drawn = lines.length;
    } else {
      console.log(`${lines.join('\n')}\n`);
    }
  };
  if (tty) {
    say = (line) => {
      process.stdout.write(`${drawn > 0 ? `\x1b[${drawn}A\x1b[J` : ''}${line}\n`);
      drawn = 0;
      draw();
    };
  }
  const timer = setInterval(draw, tty ? 250 : WINDOW_MS);

  const at = (ms: number) => sleep(Math.max(0, start + ms - performance.now()));
  /** One call of the story; a failure is told, and fails the demo, but stops nothing. */
  const tell = async <T>(what: string, call: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await call();
    } catch (error) {
      const reason =
        error instanceof ClientError ? `${Status[error.code]}: ${error.details}` : String(error);
      say(`» ${clock()} ${what} failed: ${reason}`);
      process.exitCode = 1;
      return undefined;
    }
  };
  const deadline = 500;
  let quoted: Item | undefined;
  let retried: Item | undefined;
  let retriedOn: string | undefined;
  try {
    await at(AT.deadlineCall);
    quoted = await tell('the deadline call', () =>
      traced.getItem({ id: 'quote-1', quote: true }, { deadline }),
    );
    if (quoted !== undefined) {
      const trail = [
        `client ${deadline} ms`,
        ...quoted.hops.map((h) => `${h.service} ${h.deadlineLeftMs} ms`),
      ];
      say(
        `» ${clock()} deadline across three hops (client → proxy-kit → ${quoted.backend} → pricing): ${trail.join(' → ')} left`,
      );
    }

    await at(AT.retriedCall);
    const failedOn = new Promise<string>((resolve) => {
      for (const [name, backend] of backends) {
        backend.onEvent((event) => {
          if (event.id === 'retry-1') resolve(name);
        });
      }
    });
    retried = await tell('the retried call', () =>
      traced.getItem({ id: 'retry-1', failFirstAttempt: true }, { deadline: 2_000 }),
    );
    if (retried !== undefined) {
      retriedOn = await failedOn;
      say(
        `» ${clock()} retried call: ${retriedOn} answered UNAVAILABLE (injected); proxy-kit retried it on ` +
          `${retried.backend}: OK on attempt ${retried.attempt} (the route retries UNAVAILABLE, elsewhere)`,
      );
    }

    await at(AT.slow);
    backends.get(SLOW)?.child.stdin?.write(`slow ${SLOW_MS}\n`);
    state.set(SLOW, 'slow');
    phase = { name: 'slow', since: performance.now() };
    say(`» ${clock()} ${SLOW} turns slow: +${SLOW_MS} ms per call`);

    await at(AT.kill);
    backends.get(KILLED)?.child.kill('SIGKILL');
    state.set(KILLED, 'killed');
    phase = { name: 'killed', since: performance.now() };
    say(`» ${clock()} ${KILLED} killed (SIGKILL)`);

    await at(AT.end);
  } finally {
    // Whatever happened, the load ends: its loops stop, and the process can exit.
    running = false;
    await Promise.all(callers);
    clearInterval(timer);
  }
  if (tty || performance.now() - drawnAt > WINDOW_MS / 4) draw();

  // The summary, the Prometheus endpoints and a sampled trace.
  const all = stats.all();
  const served = (name: string, from = start, to = Number.POSITIVE_INFINITY) =>
    all.filter((s) => s.ok && s.backend === name && s.at >= from && s.at < to).length;
  const answered = (from: number, to = Number.POSITIVE_INFINITY) =>
    all.filter((s) => s.ok && s.at >= from && s.at < to).length;
  // The slow backend's share once peak-EWMA has had a window to notice, until the kill leaves
  // it one of two. Failed calls: those that ended after the kill (the calls in flight on the
  // killed backend among them, unless a retry saved them), and those made once proxy-kit had
  // ejected it.
  const slowFrom = start + AT.slow + WINDOW_MS;
  const killFrom = start + AT.kill;
  const ejectedFrom = ejectedAt.get(KILLED);
  const slowShare =
    (100 * served(SLOW, slowFrom, killFrom)) / Math.max(1, answered(slowFrom, killFrom));
  const failedSince = (from: number) => all.filter((s) => !s.ok && s.at >= from).length;
  const failedStartedSince = (from: number) =>
    all.filter((s) => !s.ok && s.at - s.ms >= from).length;
  const seconds = (at: number | undefined) =>
    at === undefined ? null : Math.round((at - start) / 100) / 10;
  const failed = all.filter((s) => !s.ok).length;
  console.log(`\nSummary: ${all.length} calls in ${AT.end / 1000} s, ${failed} failed`);
  for (const name of BACKENDS) {
    const share = (100 * served(name)) / Math.max(1, answered(start));
    console.log(
      `  ${name.padEnd(10)} answered ${String(served(name)).padStart(5)} (${share.toFixed(1)}%)`,
    );
  }
  console.log(
    `  ${SLOW} slow: ${slowShare.toFixed(1)}% of the calls from ${seconds(slowFrom)} s to the kill (peak-EWMA steers away from latency)`,
  );
  console.log(
    `  ${KILLED} killed at ${seconds(killFrom)} s: ${failedSince(killFrom)} calls failed after the kill; ` +
      (ejectedFrom === undefined
        ? 'proxy-kit logged no ejection'
        : `ejected at ${seconds(ejectedFrom)} s, ${failedStartedSince(ejectedFrom)} of the calls made after that failed`),
  );
  for (const [reason, count] of failures) console.log(`  failed ${count}×: ${reason}`);

  const sample = await fetch(backends.get('backend-a')?.ready.metrics ?? '').then((r) => r.text());
  const proxyMetrics = proxyAdmin === undefined ? undefined : `${proxyAdmin}/metrics`;
  const proxySample =
    proxyMetrics === undefined ? '' : await fetch(proxyMetrics).then((r) => r.text());
  console.log(`\nPrometheus, served while the demo ran: proxy-kit's admin ${proxyMetrics}`);
  console.log(`  this client ${telemetry.prometheusUrl}`);
  for (const name of BACKENDS) {
    if (name !== KILLED) console.log(`  ${name} ${backends.get(name)?.ready.metrics}`);
  }
  console.log(
    `  e.g. from proxy-kit, per endpoint (${BACKENDS.map((n) => `${n} ${backends.get(n)?.ready.address}`).join(', ')}):`,
  );
  for (const line of proxySample
    .split('\n')
    .filter((l) => /^proxykit_endpoint_(calls_total|ejections_total)\{/.test(l))) {
    console.log(`    ${line}`);
  }
  console.log(`  and from backend-a (the stable RPC conventions):`);
  for (const line of sample
    .split('\n')
    .filter((l) => l.startsWith('rpc_server_call_duration_count'))) {
    console.log(`    ${line}`);
  }

  // Spans are exported when the processes stop.
  await stopChildren();
  await telemetry.shutdown();
  const quoteTrace = collector.spans.find((s) => s.service === 'pricing')?.traceId;
  const sampledTraces = new Set(
    collector.spans.filter((s) => s.service === 'demo-client').map((s) => s.traceId),
  );
  console.log(
    `\nTraces: ${sampledTraces.size} sampled calls (the deadline call, the retried one, 1 in ${TRACE_ONE_IN} others)`,
  );
  if (quoteTrace !== undefined) {
    const spans = collector.spans.filter((s) => s.traceId === quoteTrace);
    console.log(
      `  trace ${quoteTrace}, the deadline call: ${spans.length} spans from ${new Set(spans.map((s) => s.service)).size} processes`,
    );
    for (const line of traceTree(spans)) console.log(`    ${line}`);
  }

  const summary = {
    calls: all.length,
    failed,
    answered: Object.fromEntries(BACKENDS.map((name) => [name, served(name)])),
    endpoints: Object.fromEntries(
      BACKENDS.map((name) => [name, backends.get(name)?.ready.address]),
    ),
    slow: { backend: SLOW, at: seconds(start + AT.slow), shareAfter: slowShare },
    killed: {
      backend: KILLED,
      at: seconds(killFrom),
      ejectedAt: seconds(ejectedFrom),
      failedAfterKill: failedSince(killFrom),
      /** Of the calls made once proxy-kit had ejected it. */
      failedAfterEjection: ejectedFrom === undefined ? null : failedStartedSince(ejectedFrom),
    },
    deadline: { ms: deadline, hops: quoted?.hops ?? null },
    retried:
      retried === undefined
        ? null
        : { failedOn: retriedOn, answeredBy: retried.backend, attempt: retried.attempt },
    prometheus: [
      proxyMetrics,
      telemetry.prometheusUrl,
      ...BACKENDS.map((b) => backends.get(b)?.ready.metrics),
    ],
    sampledTraceId: quoteTrace ?? null,
  };
  console.log(`\nsummary: ${JSON.stringify(summary)}`);
}

/** A pino level, as a number or as its label (`"warn"`). */
function levelOf(level: unknown): number {
  const labels: Record<string, number> = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
  return typeof level === 'number' ? level : (labels[String(level)] ?? 0);
}

/** A child process of the demo, and the JSON line it printed when it was ready. */
interface Started {
  child: ChildProcess;
  ready: { name: string; address: string; metrics: string };
  onEvent(listener: (event: Record<string, unknown>) => void): void;
}

async function startNode(script: string, env: NodeJS.ProcessEnv): Promise<Started> {
  const child = spawn(process.execPath, [here(script)], {
    env,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const listeners: ((event: Record<string, unknown>) => void)[] = [];
  const ready = await new Promise<Started['ready']>((resolve, reject) => {
    let first = true;
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (first) resolve(parsed as unknown as Started['ready']);
      else for (const listener of listeners) listener(parsed);
      first = false;
    });
    child.once('exit', (code) =>
      reject(new Error(`${script} exited (${code}) before it was ready`)),
    );
  });
  return { child, ready, onEvent: (listener) => listeners.push(listener) };
}

/** Starts `proxy-kit --config <file>` and resolves with where it listens. */
async function startProxyKit(
  config: string,
  env: NodeJS.ProcessEnv,
  onLog: (log: Record<string, unknown>) => void,
): Promise<string> {
  // `npm run demo` puts the workspace's node_modules/.bin, where npm linked the bin, on PATH.
  const child = spawn('proxy-kit', ['--config', config], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('error', (error) =>
      reject(
        new Error(`cannot run proxy-kit (${error.message}): start the demo with \`npm run demo\``),
      ),
    );
    child.once('exit', (code) =>
      reject(new Error(`proxy-kit exited (${code}) before it listened`)),
    );
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const log = JSON.parse(line) as Record<string, unknown>;
      if (log.msg === 'listening') resolve(String(log.address));
      else onLog(log);
    });
  });
}

/** SIGTERM to every child still running (each flushes its spans), then waits for them. */
async function stopChildren(): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }),
  );
}

try {
  await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await stopChildren();
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
}
