// RSS of a small server on @switchyard/h2 (perf/echo-server.mjs): idle, after one 100 MB message
// passed through a stream, and after a rapid-reset run; each figure also after a forced GC.
// Usage: node perf/memory.mjs [--impl old|new] [--mb 100]   (needs `npm run build` first)
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { impl: { type: 'string', default: 'new' }, mb: { type: 'string', default: '100' } },
});
const here = dirname(fileURLToPath(import.meta.url));
const child = fork(join(here, 'echo-server.mjs'), ['--impl', values.impl], {
  execArgv: ['--expose-gc'],
});
const [{ port }] = await once(child, 'message');
const rss = () =>
  Math.round(
    Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024,
  );
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function sample(label) {
  await sleep(500);
  const before = rss();
  child.send('gc');
  const [{ memory }] = await once(child, 'message');
  const mb = (n) => String(Math.round(n / 2 ** 20)).padStart(3);
  console.log(
    `${label.padEnd(34)} RSS ${String(before).padStart(4)} MB, after GC ${String(rss()).padStart(4)} MB` +
      ` (V8 heap ${mb(memory.heapTotal)}, used ${mb(memory.heapUsed)}, buffers ${mb(memory.arrayBuffers)})`,
  );
}

/** One call through node:http2: `bytes` up, the same back. */
async function call(bytes) {
  const session = h2connect(`http://127.0.0.1:${port}`);
  const stream = session.request({ ':method': 'POST', ':path': '/echo' });
  let received = 0;
  stream.on('data', (d) => {
    received += d.length;
  });
  const chunk = Buffer.alloc(1 << 20, 7);
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    const piece = bytes - sent < chunk.length ? chunk.subarray(0, bytes - sent) : chunk;
    if (!stream.write(piece)) await once(stream, 'drain');
  }
  stream.end();
  await once(stream, 'close');
  session.close();
  if (received !== bytes) throw new Error(`received ${received} of ${bytes}`);
}

/** HEADERS + RST_STREAM pairs on fresh connections, as fast as the server lets them. */
async function rapidReset(connections, pairs) {
  const { HpackEncoder, HeaderBlock } = await import('../dist/index.js');
  const frame = (type, flags, id, payload) => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(id, 5);
    return Buffer.concat([h, payload]);
  };
  for (let c = 0; c < connections; c++) {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.on('data', () => {});
    socket.on('error', () => {});
    const encoder = new HpackEncoder();
    const out = [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0))];
    const headers = new HeaderBlock([
      ':method',
      'POST',
      ':scheme',
      'http',
      ':path',
      '/echo',
      ':authority',
      'x',
    ]);
    for (let i = 0; i < pairs; i++) {
      const id = 2 * i + 1;
      out.push(
        frame(1, 4, id, Buffer.from(encoder.encode(headers))),
        frame(3, 0, id, Buffer.from([0, 0, 0, 8])),
      );
    }
    socket.end(Buffer.concat(out));
    await once(socket, 'close');
  }
}

console.log(
  `server on ${values.impl === 'old' ? "proxy-kit's src/h2" : '@switchyard/h2'}, Node ${process.version}`,
);
await call(1024);
await sample('idle (after one small call)');
await call(Number(values.mb) << 20);
await sample(`after one ${values.mb} MB message`);
await call(Number(values.mb) << 20);
await sample(`after a second ${values.mb} MB message`);
await rapidReset(50, 2000);
await sample('after rapid reset (50 × 2,000)');
child.kill();
