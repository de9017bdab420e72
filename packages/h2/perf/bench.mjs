// CPU per request of perf/echo-server.mjs on @switchyard/h2 and on proxy-kit's copy of src/h2,
// under h2load (nghttp2-client), interleaved rounds: the codec's hot path — header decode and
// encode, DATA relayed through flow control, one write per burst.
// Usage: node perf/bench.mjs [--rounds 3] [--requests 200000] [--body 32]   (after npm run build)
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '200000' },
    body: { type: 'string', default: '32' },
    profile: { type: 'boolean', default: false },
  },
});
const here = dirname(fileURLToPath(import.meta.url));
const bodyFile = join(tmpdir(), `h2-bench-body-${process.pid}`);
writeFileSync(bodyFile, Buffer.alloc(Number(values.body), 7));
const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString());
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / ticks;
};

async function run(impl) {
  const execArgv = values.profile
    ? [
        '--cpu-prof',
        `--cpu-prof-dir=${join(here, 'profiles')}`,
        `--cpu-prof-name=${impl}.cpuprofile`,
      ]
    : [];
  const child = fork(join(here, 'echo-server.mjs'), ['--impl', impl], { execArgv });
  const [{ port }] = await once(child, 'message');
  const h2load = (n) =>
    execFileSync('h2load', [
      '-n',
      String(n),
      '-c',
      '8',
      '-m',
      '32',
      '-d',
      bodyFile,
      `http://127.0.0.1:${port}/echo`,
    ]).toString();
  h2load(20_000); // warm-up
  const before = cpuMs(child.pid);
  const out = h2load(Number(values.requests));
  const cpu = cpuMs(child.pid) - before;
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)[1]);
  const ok = /(\d+) succeeded/.exec(out)[1];
  child.kill('SIGINT');
  await once(child, 'exit');
  return { impl, rps, usPerRequest: (cpu * 1000) / Number(values.requests), ok };
}

for (let round = 0; round < Number(values.rounds); round++) {
  for (const impl of round % 2 ? ['old', 'new'] : ['new', 'old']) {
    const r = await run(impl);
    console.log(
      `${impl === 'new' ? '@switchyard/h2     ' : "proxy-kit's src/h2 "} ${String(Math.round(r.rps)).padStart(7)} req/s  ${r.usPerRequest.toFixed(2)} µs CPU/request  (${r.ok} ok)`,
    );
  }
}
