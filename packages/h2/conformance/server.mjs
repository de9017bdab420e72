// A tiny HTTP/2 server on @switchyard/h2 (the built dist/), for foreign conformance suites such
// as h2spec: every request gets `200`, a short body and END_STREAM once its request has ended.
// Usage: node conformance/server.mjs [port]   (prints "listening <port>")
import { createServer } from 'node:net';
import { H2Connection, HeaderBlock } from '../dist/index.js';

const body = Buffer.from('hello from @switchyard/h2\n'.repeat(4));
const handler = {
  onHeaders(stream, _headers, endStream) {
    if (endStream) respond(stream);
  },
  onData(stream, data, endStream) {
    stream.consume(data.length);
    if (endStream) respond(stream);
  },
  onReset() {},
};
function respond(stream) {
  stream.sendHeaders(new HeaderBlock([':status', '200', 'content-type', 'text/plain']), false);
  stream.sendData(body, true);
}

const server = createServer((socket) => {
  new H2Connection(socket, 'server', {
    onStream(stream, _headers, endStream) {
      stream.handler = handler;
      if (endStream) respond(stream);
    },
    onReady() {},
    onGoaway() {},
    onCapacity() {},
    onClose() {},
  });
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
