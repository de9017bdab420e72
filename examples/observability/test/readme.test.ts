import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// The README's "Run it without Docker" block, run as written by bash from the repository root:
// its fixed ports must be free, and the apps it starts must be gone when it ends.

const root = fileURLToPath(new URL('../../..', import.meta.url));
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('## Run it without Docker'));
const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
// Below 32768: outside Linux's ephemeral range, where a client retrying a port nobody listens on yet
// can be given that very port as its own and connect to itself, taking it (it happened here).
const PORTS = [15051, 15052, 15053, 9464, 9465, 9466];

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

let group: number | undefined;
afterAll(() => {
  // Whatever the block left running, if it failed half-way.
  if (group !== undefined) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {}
  }
});

describe('README: Run it without Docker', () => {
  it('is one block that starts the three apps, loads them, scrapes the frontend and stops them', () => {
    expect(block.split('\n')[0]).toBe('cd examples/observability');
    expect(block.match(/node dist\/app\.js &/g)).toHaveLength(3);
    expect(block).toContain('node dist/load.js');
    expect(block).toContain('kill %1 %2 %3');
  });

  it('runs as written: 40 OK, 5 NOT_FOUND, 5 past their deadline, counted by the frontend', async () => {
    const busy = [];
    for (const port of PORTS) if (await listening(port)) busy.push(port);
    expect(busy, 'ports the README uses are taken on 127.0.0.1').toEqual([]);

    const child = spawn('bash', ['-c', block], { cwd: root, detached: true });
    group = child.pid;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    // 'close': the exit code, and every byte the block and its apps wrote to the pipes.
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, stderr).toBe(0);

    const lines = stdout.trim().split('\n');
    const ready = lines
      .filter((line) => line.startsWith('{"service"'))
      .map((line) => JSON.parse(line));
    expect(ready.map((app) => app.service).sort(), stdout + stderr).toEqual([
      'frontend',
      'inventory',
      'orders',
    ]);
    for (const app of ready) {
      expect(app.grpc).toMatch(/^127\.0\.0\.1:1505[123]$/);
      expect(app.metrics).toMatch(/^http:\/\/127\.0\.0\.1:946[456]\/metrics$/);
    }
    expect(lines).toContain('{"OK":40,"NOT_FOUND":5,"DEADLINE_EXCEEDED":5}');

    const counts = new Map<string, number>();
    for (const line of lines.filter((l) => l.startsWith('rpc_server_call_duration_count{'))) {
      expect(line).toContain('rpc_method="shop.v1.Shop/GetOrder"');
      const code = /rpc_response_status_code="(\w+)"/.exec(line)?.[1] as string;
      counts.set(code, Number(line.split(' ').at(-1)));
    }
    expect(counts.get('OK')).toBe(40);
    expect(counts.get('NOT_FOUND')).toBe(5);
    // The frontend's own deadline fires first, or its caller's cancellation a moment before.
    expect((counts.get('DEADLINE_EXCEEDED') ?? 0) + (counts.get('CANCELLED') ?? 0)).toBe(5);

    // `kill %1 %2 %3` sent SIGTERM: the apps shut down and free their ports.
    await expect
      .poll(async () => (await Promise.all(PORTS.map(listening))).some(Boolean), {
        timeout: 10_000,
      })
      .toBe(false);
  }, 60_000);
});
