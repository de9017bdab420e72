// A gRPC backend that costs as little CPU as possible, so that a measurement of the proxy in
// front of it is not a measurement of the backend: every call, whatever its path, is answered
// with one fixed 32-byte message and status OK, from header objects built once.
// Usage: node backend.mjs <port> [name]
import http2 from 'node:http2';

const port = Number(process.argv[2] ?? 0);
const payload = Buffer.alloc(32, 0x61);
const message = Buffer.concat([Buffer.from([0, 0, 0, 0, payload.length]), payload]);
const HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
const TRAILERS = { 'grpc-status': '0' };
const RESPOND = { waitForTrailers: true };

function onWantTrailers() {
  this.sendTrailers(TRAILERS);
}
function onEnd() {
  this.respond(HEADERS, RESPOND);
  this.end(message);
}

const server = http2.createServer({
  settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: 10_000 },
  maxSessionMemory: 64,
});
server.on('connection', (socket) => socket.setNoDelay(true));
server.on('session', (session) => {
  session.on('error', () => {});
  session.on('connect', () => session.setLocalWindowSize(16 << 20));
});
server.on('stream', (stream) => {
  stream.on('error', () => {});
  stream.on('wantTrailers', onWantTrailers);
  stream.on('end', onEnd);
  stream.resume();
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
