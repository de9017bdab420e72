import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { PYTHON, PYTHON_GRPC_MISSING, PYTHON_PATH, pythonGrpcAvailable } from '@switchyard/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  HealthCheckResponse_ServingStatus as EsServingStatus,
  Health,
} from '../src/gen/connect/grpc/health/v1/health_pb.js';
import { type RunningHealthServer, startHealthServer } from './support/health-server.js';

const CLIENT = fileURLToPath(new URL('./fixtures/health_client.py', import.meta.url));
const DESCRIPTOR_SET = fileURLToPath(new URL('../dist/health.binpb', import.meta.url));

const pythonAvailable = await pythonGrpcAvailable();
if (!pythonAvailable) console.warn(`Skipping Python health client tests. ${PYTHON_GRPC_MISSING}`);

let running: RunningHealthServer;
beforeAll(async () => {
  running = await startHealthServer();
});
afterAll(() => running?.close());
beforeEach(() => {
  const { health } = running;
  health.setStatus('healthy');
  health.setStatus('healthy', 'shop.v1.Cart');
  health.setStatus('unhealthy', 'shop.v1.Payments');
});

describe('a connect-node client', () => {
  let sessions: Http2SessionManager;
  let client: ReturnType<typeof createClient<typeof Health>>;
  beforeAll(() => {
    const baseUrl = `http://${running.address}`;
    sessions = new Http2SessionManager(baseUrl);
    client = createClient(Health, createGrpcTransport({ baseUrl, sessionManager: sessions }));
  });
  afterAll(() => sessions.abort());

  it('gets SERVING, NOT_SERVING and NOT_FOUND from Check', async () => {
    expect((await client.check({ service: '' })).status).toBe(EsServingStatus.SERVING);
    expect((await client.check({ service: 'shop.v1.Cart' })).status).toBe(EsServingStatus.SERVING);
    expect((await client.check({ service: 'shop.v1.Payments' })).status).toBe(
      EsServingStatus.NOT_SERVING,
    );
    const error = await client.check({ service: 'shop.v1.Nope' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });

  it('lists every service', async () => {
    const { statuses } = await client.list({});
    expect(Object.fromEntries(Object.entries(statuses).map(([k, v]) => [k, v.status]))).toEqual({
      '': EsServingStatus.SERVING,
      'shop.v1.Cart': EsServingStatus.SERVING,
      'shop.v1.Payments': EsServingStatus.NOT_SERVING,
    });
  });

  it('follows a service through Watch', async () => {
    const stream = client.watch({ service: 'shop.v1.Later' })[Symbol.asyncIterator]();
    expect((await stream.next()).value.status).toBe(EsServingStatus.SERVICE_UNKNOWN);
    running.health.setStatus('healthy', 'shop.v1.Later');
    expect((await stream.next()).value.status).toBe(EsServingStatus.SERVING);
    running.health.setStatus('unhealthy', 'shop.v1.Later');
    expect((await stream.next()).value.status).toBe(EsServingStatus.NOT_SERVING);
    await stream.return?.();
    running.health.setStatus('unknown', 'shop.v1.Later');
  });
});

/** Runs the Python client; `onLine` sees each JSON line as it is printed. */
function python(
  args: string[],
  onLine: (record: Record<string, unknown>) => void = () => {},
): Promise<Record<string, unknown>[]> {
  if (!existsSync(DESCRIPTOR_SET)) {
    throw new Error(`${DESCRIPTOR_SET} is missing: build this package first (npm run build)`);
  }
  const child = spawn(
    PYTHON,
    [CLIENT, '--descriptor-set', DESCRIPTOR_SET, '--target', running.address, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Ahead of, not instead of, a PYTHONPATH that may be how the interpreter finds grpcio.
      env: {
        ...process.env,
        PYTHONPATH: [PYTHON_PATH, process.env.PYTHONPATH].filter(Boolean).join(delimiter),
      },
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const records: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const record = JSON.parse(line) as Record<string, unknown>;
    records.push(record);
    onLine(record);
  });
  return new Promise((resolve, reject) => {
    child.once('close', (code) =>
      code === 0 ? resolve(records) : reject(new Error(`python exited ${code}:\n${stderr}`)),
    );
  });
}

describe.skipIf(!pythonAvailable)('a Python grpcio client', () => {
  it('gets SERVING, NOT_SERVING and NOT_FOUND from Check', async () => {
    const check = (service: string) => python(['--method', 'Check', '--service', service]);
    expect(await check('')).toEqual([{ status: 'SERVING' }, { code: 'OK', details: '' }]);
    expect(await check('shop.v1.Cart')).toEqual([
      { status: 'SERVING' },
      { code: 'OK', details: '' },
    ]);
    expect(await check('shop.v1.Payments')).toEqual([
      { status: 'NOT_SERVING' },
      { code: 'OK', details: '' },
    ]);
    expect(await check('shop.v1.Nope')).toEqual([
      { code: 'NOT_FOUND', details: 'unknown service "shop.v1.Nope"' },
    ]);
  });

  it('lists every service', async () => {
    expect(await python(['--method', 'List'])).toEqual([
      { statuses: { '': 'SERVING', 'shop.v1.Cart': 'SERVING', 'shop.v1.Payments': 'NOT_SERVING' } },
      { code: 'OK', details: '' },
    ]);
  });

  it('follows a service through Watch', async () => {
    const next: Record<string, () => void> = {
      SERVICE_UNKNOWN: () => running.health.setStatus('healthy', 'shop.v1.Later'),
      SERVING: () => running.health.setStatus('unhealthy', 'shop.v1.Later'),
    };
    const records = await python(
      ['--method', 'Watch', '--service', 'shop.v1.Later', '--messages', '3'],
      (record) => next[record.status as string]?.(),
    );
    expect(records).toEqual([
      { status: 'SERVICE_UNKNOWN' },
      { status: 'SERVING' },
      { status: 'NOT_SERVING' },
      { code: 'OK', details: '' },
    ]);
    running.health.setStatus('unknown', 'shop.v1.Later');
  });
});
