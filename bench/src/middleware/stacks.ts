import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateTestPki } from '@switchyard/testing';
import { type OtlpSink, startOtlpSink } from '../otlp-sink.js';
import { type Host, startHost } from '../processes.js';
import { variants as catalog } from './catalog.js';
import { PKI_DIR_VARIABLE, type Variant } from './variant.js';

/** The two processes of one stack: its server and its client (see src/hosts/middleware-*.ts). */
export interface StackHosts {
  server: Host<{ address: string }>;
  client: Host<object>;
}

/** The catalog's stacks whose names contain one of `parts`, with their baselines, in order. */
export function chosenVariants(parts: readonly string[] | undefined): Variant[] {
  if (parts === undefined) return catalog;
  const chosen = catalog.filter((variant) => parts.some((part) => variant.name.includes(part)));
  if (chosen.length === 0)
    throw new Error(`no middleware stack name contains ${parts.join(' or ')}`);
  const baselines = new Set(chosen.map((variant) => variant.baseline));
  return catalog.filter((variant) => chosen.includes(variant) || baselines.has(variant.name));
}

/**
 * Runs `body` with what the stacks' hosts read from their environment: the PKI of the mTLS
 * stacks, and the OpenTelemetry SDK's configuration for the stacks that start it — spans and
 * metrics exported over OTLP/HTTP to a local sink. Everything is undone afterwards.
 */
export async function withStackEnvironment<T>(body: (sink: OtlpSink) => Promise<T>): Promise<T> {
  const pkiDir = await writePki();
  const sink = await startOtlpSink();
  const environment: Record<string, string> = {
    [PKI_DIR_VARIABLE]: pkiDir,
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_METRIC_EXPORT_INTERVAL: '5000',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_SERVICE_NAME: 'switchyard-bench',
  };
  Object.assign(process.env, environment);
  try {
    return await body(sink);
  } finally {
    await sink.close();
    rmSync(pkiDir, { recursive: true, force: true });
    for (const key of Object.keys(environment)) delete process.env[key];
  }
}

/** Where a stack's processes run and how much they warm up. */
export interface StackLaunch {
  serverCpu?: number;
  clientCpu?: number;
  /** Scales the client's warm-up calls (src/hosts/middleware-client.ts); 1 in a full run. */
  warmUpScale: number;
  /** Runs each process under another program (valgrind); `process` is "server" or "client". */
  launch?: (process: 'server' | 'client') => { execPath: string; execArgv: string[] };
}

/** Starts a stack's server, then its client, which warms up before it answers. */
export async function startStack(variant: Variant, options: StackLaunch): Promise<StackHosts> {
  const server = await startHost<{ address: string }>('middleware-server', [variant.name], {
    cpu: options.serverCpu,
    launch: options.launch?.('server'),
  });
  try {
    const client = await startHost<object>(
      'middleware-client',
      [variant.name, server.ready.address, String(options.warmUpScale)],
      { cpu: options.clientCpu, launch: options.launch?.('client') },
    );
    return { server, client };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** The test PKI as PEM files, read by both processes of each mTLS stack. */
async function writePki(): Promise<string> {
  const pki = await generateTestPki();
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-pki-'));
  writeFileSync(join(dir, 'ca.pem'), pki.ca.certPem);
  writeFileSync(join(dir, 'server.pem'), pki.server.chainPem);
  writeFileSync(join(dir, 'server-key.pem'), pki.server.keyPem);
  writeFileSync(join(dir, 'client.pem'), pki.client.chainPem);
  writeFileSync(join(dir, 'client-key.pem'), pki.client.keyPem);
  return dir;
}
