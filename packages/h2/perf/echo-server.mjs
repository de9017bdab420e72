// A small HTTP/2 server that relays each request body back as its response, through the
// stream's flow control (the request's window is given back as the response bytes leave), as a
// proxy does. Child process of memory.mjs; `--impl old` runs proxy-kit's copy of src/h2 instead.
import { createServer } from 'node:net';

const old =
  process.argv.includes('--impl') && process.argv[process.argv.indexOf('--impl') + 1] === 'old';
const { H2Connection } = await import(
  old ? '../../proxy-kit/dist/h2/connection.js' : '../dist/index.js'
);
const { HeaderBlock } = await import(old ? '../../proxy-kit/dist/h2/hpack.js' : '../dist/index.js');

const handler = {
  onHeaders(stream, _headers, endStream) {
    if (endStream) stream.sendHeaders(new HeaderBlock(['grpc-status', '0']), true);
  },
  onData(stream, data, endStream) {
    stream.sendData(data, endStream, stream);
  },
  onReset() {},
};
const server = createServer((socket) => {
  socket.setNoDelay(true);
  new H2Connection(socket, 'server', {
    onStream(stream, _headers, endStream) {
      stream.handler = handler;
      stream.sendHeaders(
        new HeaderBlock([':status', '200', 'content-type', 'application/octet-stream']),
        endStream,
      );
    },
    onReady() {},
    onGoaway() {},
    onCapacity() {},
    onClose() {},
  });
});
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (message) => {
  if (message === 'gc') {
    globalThis.gc?.();
    setTimeout(() => process.send({ gc: true, memory: process.memoryUsage() }), 100);
  }
});
// Exit normally on SIGINT, so that --cpu-prof writes its profile.
process.on('SIGINT', () => process.exit(0));
