import { connect } from 'node:http2';
import { staticDiscovery } from '@switchyard/discovery';
import { it } from 'vitest';
import { startProxy } from '../src/index.js';
import { grpcFrame, rawCall, startRawBackend } from './support/raw-http2.js';

it('debug', async () => {
  const raw = await startRawBackend((stream, headers) => {
    const path = headers[':path'] as string;
    stream.on('close', () => console.log('backend close rst', stream.rstCode));
    if (path.startsWith('/rst-after')) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.write(grpcFrame(Buffer.from('partial')), () => stream.close(11));
    }
  });
  const proxy = await startProxy({
    listen: '127.0.0.1:0',
    discovery: staticDiscovery([raw.address]),
  });
  const address = `127.0.0.1:${proxy.address.port}`;
  console.log(
    await rawCall(address, { ':path': '/rst-after/11', 'content-type': 'application/grpc' }),
  );
  const big = rawCall(
    address,
    { ':path': '/a/b', 'content-type': 'application/grpc', 'x-big': 'a'.repeat(80_000) },
    grpcFrame(Buffer.alloc(0)),
    { maxSendHeaderBlockLength: 1 << 20 },
  );
  console.log(await Promise.race([big, new Promise((r) => setTimeout(() => r('timeout'), 2000))]));
  // hang + cancel
  const s = connect(`http://${address}`);
  const req = s.request({
    ':method': 'POST',
    ':path': '/hang/x',
    'content-type': 'application/grpc',
  });
  req.on('error', () => {});
  req.write(grpcFrame(Buffer.from('x')));
  await new Promise((r) => setTimeout(r, 200));
  req.close(8);
  await new Promise((r) => setTimeout(r, 500));
  s.close();
  await proxy.close(100);
  await raw.close();
});
