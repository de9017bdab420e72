// Measures proxy-kit against direct calls and nginx `grpc_pass`, side by side in one run.
// See perf/README.md. Usage: node perf/run.mjs [--workers 1] [--duration 10] [--cpus 1] …
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '1' }, // proxy processes (proxy-kit workers, nginx workers)
    backends: { type: 'string', default: '2' },
    duration: { type: 'string', default: '10' }, // seconds per closed-loop run
    clients: { type: 'string', default: '8' }, // h2load connections
    streams: { type: 'string', default: '32' }, // concurrent streams per connection
    rate: { type: 'string', default: '1000' }, // req/s of the fixed-rate latency run
    cpus: { type: 'string' }, // taskset CPU list for the proxy under test, e.g. "1"
    'client-cpus': { type: 'string' }, // taskset CPU list for h2load and backends, e.g. "0"
    rounds: { type: 'string', default: '1' }, // repetitions, interleaved, to see the noise
    only: { type: 'string' }, // comma list of targets: direct,proxy-kit,nginx
    profile: { type: 'boolean', default: false }, // proxy-kit under --cpu-prof (workers 1)
  },
});
const workers = Number(args.workers);
const tmp = mkdtempSync(join(tmpdir(), 'proxy-kit-perf-'));
const children = [];

function pinned(cpus, command, argv) {
  return cpus ? ['taskset', ['-c', cpus, command, ...argv]] : [command, argv];
}

function start(cpus, command, argv, options = {}) {
  const [cmd, full] = pinned(cpus, command, argv);
  const child = spawn(cmd, full, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  children.push(child);
  child.output = '';
  child.stdout.on('data', (d) => {
    child.output += d;
  });
  child.stderr.on('data', (d) => {
    child.output += d;
  });
  return child;
}

function waitFor(child, pattern, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timeout waiting for ${pattern}: ${child.output}`)),
      ms,
    );
    const check = () => {
      const match = pattern.exec(child.output);
      if (match) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(match);
      }
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    check();
  });
}

function stop(child, signal = 'SIGTERM') {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill(signal);
  });
}

/** Every process in the tree under `pid` (nginx and cluster workers are children). */
function tree(pid) {
  const parents = new Map();
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {}
  }
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    for (const [child, parent] of parents) if (parent === pids[i]) pids.push(child);
  }
  return pids;
}

/** CPU seconds (user + system) and RSS bytes of a process tree. */
function usage(pid) {
  let cpu = 0;
  let rss = 0;
  const ticks = 100; // USER_HZ on Linux
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu += (Number(fields[11]) + Number(fields[12])) / ticks;
      rss += Number(fields[21]) * 4096;
    } catch {}
  }
  return { cpu, rss };
}

function h2load(port, extra, cpus) {
  const body = join(tmp, 'request.bin');
  const [cmd, argv] = pinned(cpus, 'h2load', [
    ...extra,
    '-d',
    body,
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    `http://127.0.0.1:${port}/switchyard.testing.v1.TestService/Unary`,
  ]);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('exit', (code) => {
      const done =
        /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(out);
      const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
      if (code !== 0 || !done || !rate) reject(new Error(`h2load failed:\n${out}`));
      else
        resolve({ succeeded: Number(done[2]), failed: Number(done[3]), rps: Number(rate[1]), out });
    });
  });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function closedLoop(target) {
  // Warm-up (JIT, connections) outside the measurement.
  await h2load(
    target.port,
    ['-n', '5000', '-c', args.clients, '-m', args.streams, '-t', '1'],
    args['client-cpus'],
  );
  const before = target.pid ? usage(target.pid) : undefined;
  const result = await h2load(
    target.port,
    ['-D', args.duration, '-c', args.clients, '-m', args.streams, '-t', '1'],
    args['client-cpus'],
  );
  const after = target.pid ? usage(target.pid) : undefined;
  return {
    rps: result.rps,
    failed: result.failed,
    cpuPerCallUs: before ? ((after.cpu - before.cpu) * 1e6) / result.succeeded : undefined,
    cpuCores: before ? (after.cpu - before.cpu) / Number(args.duration) : undefined,
    rssMB: after ? after.rss / 2 ** 20 : undefined,
  };
}

let fixedRateRuns = 0;

async function fixedRate(target) {
  const clients = 10;
  const log = join(tmp, `latency-${target.name}-${fixedRateRuns++}.tsv`);
  const before = target.pid ? usage(target.pid) : undefined;
  const result = await h2load(
    target.port,
    [
      '-D',
      args.duration,
      '-c',
      String(clients),
      '-t',
      '1',
      '--rps',
      String(Number(args.rate) / clients),
      `--log-file=${log}`,
    ],
    args['client-cpus'],
  );
  const after = target.pid ? usage(target.pid) : undefined;
  const latencies = readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => Number(line.split('\t')[2]) / 1000)
    .sort((a, b) => a - b);
  return {
    rps: result.rps,
    failed: result.failed,
    cpuPerCallUs: before ? ((after.cpu - before.cpu) * 1e6) / result.succeeded : undefined,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1),
  };
}

async function startBackends(count) {
  const ports = [];
  for (let i = 0; i < count; i++) {
    const child = start(args['client-cpus'], process.execPath, [join(here, 'backend.mjs'), '0']);
    const [, port] = await waitFor(child, /"listening":(\d+)/);
    ports.push(Number(port));
  }
  return ports;
}

async function startProxyKit(upstreams) {
  const argv = [
    ...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(here, 'profiles')}`] : []),
    join(here, '..', 'dist', 'cli.js'),
    '--listen',
    '127.0.0.1:0',
    '--upstream',
    upstreams.map((p) => `127.0.0.1:${p}`).join(','),
    '--workers',
    String(workers),
    '--log-level',
    'info',
  ];
  const child = start(args.cpus, process.execPath, argv);
  const [, port] = await waitFor(child, /"address":"127\.0\.0\.1:(\d+)"/);
  await new Promise((r) => setTimeout(r, 300)); // every worker listening
  return { name: 'proxy-kit', port: Number(port), pid: child.pid, child };
}

async function startNginx(upstreams) {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const conf = join(tmp, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes ${workers};
daemon off;
pid ${join(tmp, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  # nginx closes a client connection after 1000 requests by default; h2load does not reconnect.
  keepalive_requests 100000000;
  client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp};
  uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  upstream backends {
${upstreams.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 512;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:${port} http2;
    http2_max_concurrent_streams 1000;
    location / { grpc_pass grpc://backends; }
  }
}
`,
  );
  const child = start(args.cpus, 'nginx', ['-p', tmp, '-c', conf, '-e', 'stderr']);
  await new Promise((r) => setTimeout(r, 500));
  if (child.exitCode !== null) throw new Error(`nginx failed: ${child.output}`);
  return { name: 'nginx', port, pid: child.pid, child };
}

async function main() {
  // One TestRequest{payload: "hello"} message, gRPC-framed.
  writeFileSync(
    join(tmp, 'request.bin'),
    Buffer.from([0, 0, 0, 0, 7, 0x0a, 5, ...Buffer.from('hello')]),
  );
  const upstreams = await startBackends(Number(args.backends));
  const targets = (args.only ?? 'direct,proxy-kit,nginx').split(',');
  let hasNginx = true;
  try {
    await new Promise((resolve, reject) =>
      spawn('nginx', ['-v']).on('exit', resolve).on('error', reject),
    );
  } catch {
    hasNginx = false;
    console.error('nginx not installed: skipping the nginx comparison (apt-get install nginx)');
  }
  const results = [];
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const name of targets) {
      if (name === 'nginx' && !hasNginx) continue;
      const target =
        name === 'direct'
          ? { name, port: upstreams[0] }
          : name === 'nginx'
            ? await startNginx(upstreams)
            : await startProxyKit(upstreams);
      const throughput = await closedLoop(target);
      const latency = await fixedRate(target);
      if (target.child) await stop(target.child);
      results.push({ round, target: name, ...throughput, latency });
      console.error(JSON.stringify(results.at(-1)));
    }
  }
  console.log(
    JSON.stringify(
      {
        workers,
        backends: Number(args.backends),
        clients: Number(args.clients),
        streams: Number(args.streams),
        results,
      },
      null,
      2,
    ),
  );
}

try {
  await main();
} finally {
  await Promise.all(children.map((c) => stop(c)));
  rmSync(tmp, { recursive: true, force: true });
}
