import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The demo's OTLP/HTTP receiver (JSON encoding): the apps export to it as they would to Jaeger.
import { type CollectedSpan, startTraceCollector } from '../../demo/src/collector.js';

// The example apps run as they would outside docker: `node dist/app.js`, configured by the
// environment, exporting traces over OTLP (here to a receiver in the test) and serving metrics.

const dist = (script: string) => fileURLToPath(new URL(`../dist/${script}`, import.meta.url));
const METHOD = 'shop.v1.Shop/GetOrder';

interface Started {
  service: string;
  grpc: string;
  metrics: string;
}

const children: ChildProcess[] = [];
let receiver: Awaited<ReturnType<typeof startTraceCollector>>;
const apps = new Map<string, Started>();
let loadOutcome: Record<string, number>;

function baseEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_METRICS_EXPORTER: 'prometheus',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
    OTEL_EXPORTER_PROMETHEUS_PORT: '0',
  };
}

function run(script: string, env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, [dist(script)], {
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return child;
}

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) return line;
  throw new Error(`process ${child.pid} exited (code ${child.exitCode}) before printing`);
}

async function startApp(service: string, next?: Started): Promise<Started> {
  const child = run('app.js', {
    SERVICE: service,
    GRPC_ADDRESS: '127.0.0.1:0',
    ...(next ? { NEXT: next.grpc } : {}),
  });
  const started = JSON.parse(await firstLine(child)) as Started;
  apps.set(service, started);
  return started;
}

/** One line of a Prometheus scrape: `name{labels} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function scrape(service: string): Promise<Sample[]> {
  const response = await fetch(apps.get(service)?.metrics ?? '');
  const samples: Sample[] = [];
  for (const line of (await response.text()).split('\n')) {
    const sample = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (sample === null) continue; // comments, blank lines
    const labels = Object.fromEntries(
      [...(sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    samples.push({ name: sample[1] as string, labels, value: Number(sample[3]) });
  }
  return samples;
}

/** The one sample of that name with these labels (among others); throws unless exactly one. */
function one(samples: Sample[], name: string, labels: Record<string, string>): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length !== 1) {
    throw new Error(`${found.length} samples match ${name} ${JSON.stringify(labels)}`);
  }
  return (found[0] as Sample).value;
}

beforeAll(async () => {
  if (!existsSync(dist('app.js'))) {
    throw new Error('examples/observability is not built: run `npx turbo run build` first');
  }
  receiver = await startTraceCollector();
  const inventory = await startApp('inventory');
  const orders = await startApp('orders', inventory);
  const frontend = await startApp('frontend', orders);
  // A generous deadline: first calls open connections on a loaded machine.
  const load = run('load.js', { FRONTEND: frontend.grpc, CALLS: '20', DEADLINE: '1500' });
  loadOutcome = JSON.parse(await firstLine(load));
  await new Promise((resolve) => load.once('exit', resolve));
}, 60_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await receiver?.close();
});

describe('the example apps, run with node', () => {
  it('answer the load generator: 16 OK, 2 NOT_FOUND from inventory, 2 past their deadline', () => {
    expect(loadOutcome).toEqual({ OK: 16, NOT_FOUND: 2, DEADLINE_EXCEEDED: 2 });
  });

  it('show per-method metrics on their scrape endpoints', async () => {
    for (const service of ['frontend', 'orders', 'inventory']) {
      const samples = await scrape(service);
      const count = (code: string) =>
        one(samples, 'rpc_server_call_duration_count', {
          rpc_method: METHOD,
          rpc_response_status_code: code,
        });
      expect([count('OK'), count('NOT_FOUND')], service).toEqual([16, 2]);
      // Deadlines propagate: every hop gave up on the two slow calls. Each server records
      // DEADLINE_EXCEEDED when its own deadline fires first, CANCELLED when its caller's deadline
      // timer cancels the call a moment before (the same race as in any gRPC implementation).
      await expect
        .poll(async () =>
          (await scrape(service))
            .filter(
              (s) =>
                s.name === 'rpc_server_call_duration_count' &&
                s.labels.rpc_method === METHOD &&
                ['DEADLINE_EXCEEDED', 'CANCELLED'].includes(
                  s.labels.rpc_response_status_code ?? '',
                ),
            )
            .reduce((sum, s) => sum + s.value, 0),
        )
        .toBe(2);
      expect(samples.find((s) => s.name === 'target_info')?.labels.service_name).toBe(service);
      if (service !== 'inventory') {
        const next = apps.get(service === 'frontend' ? 'orders' : 'inventory') as Started;
        expect(
          one(samples, 'rpc_client_call_duration_count', {
            rpc_response_status_code: 'OK',
            server_port: next.grpc.split(':')[1] as string,
          }),
        ).toBe(16);
      }
    }
  });

  it('send one trace per call across the four processes, and stop cleanly on SIGTERM', async () => {
    const exits = children
      .filter((child) => child.exitCode === null)
      .map((child) => {
        child.kill('SIGTERM');
        return new Promise<number | null>((resolve) => child.once('exit', resolve));
      });
    expect(await Promise.all(exits)).toEqual([0, 0, 0]);

    const traces = new Map<string, CollectedSpan[]>();
    for (const span of receiver.spans) {
      traces.set(span.traceId, [...(traces.get(span.traceId) ?? []), span]);
    }
    expect(traces.size).toBe(20);
    for (const spans of traces.values()) {
      expect(spans.every((span) => span.name === METHOD)).toBe(true);
      const chain: CollectedSpan[] = [spans.find((s) => s.parentSpanId === '') as CollectedSpan];
      for (let i = 1; i < spans.length; i++) {
        const child = spans.find((s) => s.parentSpanId === chain.at(-1)?.spanId);
        if (child) chain.push(child);
      }
      expect(chain.map((s) => `${s.service} ${s.kind}`)).toEqual([
        'loadgen CLIENT',
        'frontend SERVER',
        'frontend CLIENT',
        'orders SERVER',
        'orders CLIENT',
        'inventory SERVER',
      ]);
    }
  });
});
