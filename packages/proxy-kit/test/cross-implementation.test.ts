import { staticDiscovery } from '@switchyard/discovery';
import {
  createConnectClient,
  createTestClient,
  PYTHON_GRPC_MISSING,
  pythonGrpcAvailable,
  runPythonClient,
  startConnectServer,
  startPythonServer,
  startServer,
} from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningProxy, startProxy } from '../src/index.js';

// Foreign gRPC implementations on either side of the proxy, all four call kinds: connect-node
// (its own gRPC framing over node:http2) and Python grpcio (gRPC C-core, its own HTTP/2 and HPACK).

const pythonAvailable = await pythonGrpcAvailable();
if (!pythonAvailable) console.warn(`Skipping the Python grpcio peer. ${PYTHON_GRPC_MISSING}`);

async function* requests(count: number) {
  for (let i = 0; i < count; i++) yield { payload: `m${i}` };
}

async function proxyTo(address: string): Promise<RunningProxy> {
  return startProxy({ listen: '127.0.0.1:0', discovery: staticDiscovery([address]) });
}

describe.skipIf(!pythonAvailable)('connect-node client → proxy → Python grpcio server', () => {
  let python: Awaited<ReturnType<typeof startPythonServer>>;
  let proxy: RunningProxy;
  let connect: ReturnType<typeof createConnectClient>;

  beforeAll(async () => {
    python = await startPythonServer({ backend: 'python' });
    proxy = await proxyTo(python.address);
    connect = createConnectClient(`127.0.0.1:${proxy.address.port}`);
  });

  afterAll(async () => {
    connect?.close();
    await proxy?.close(500);
    await python?.stop();
  });

  it('unary, with metadata and an error status', async () => {
    const response = await connect.client.unary(
      { payload: 'hi', echoMetadata: ['x-who'] },
      { headers: { 'x-who': 'connect' } },
    );
    expect(response).toMatchObject({
      backend: 'python',
      payload: 'hi',
      metadata: { 'x-who': 'connect' },
    });
    await expect(
      connect.client.unary({ statusCode: 9, statusMessage: 'nope ✗' }),
    ).rejects.toMatchObject({
      code: 9,
      rawMessage: 'nope ✗',
    });
  });

  it('server streaming', async () => {
    const sequences: number[] = [];
    for await (const r of connect.client.serverStream({ responseCount: 5, responseSize: 10_000 })) {
      expect(r.backend).toBe('python');
      sequences.push(r.sequence);
    }
    expect(sequences).toEqual([0, 1, 2, 3, 4]);
  });

  it('client streaming', async () => {
    const response = await connect.client.clientStream(requests(20));
    expect(response).toMatchObject({ backend: 'python', receivedCount: 20, payload: 'm19' });
  });

  it('bidi streaming', async () => {
    const payloads: string[] = [];
    for await (const r of connect.client.bidi(requests(10))) payloads.push(r.payload);
    expect(payloads).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
  });
});

describe.skipIf(!pythonAvailable)('Python grpcio client → proxy → nice-grpc server', () => {
  let backend: Awaited<ReturnType<typeof startServer>>;
  let proxy: RunningProxy;

  beforeAll(async () => {
    backend = await startServer({ backend: 'nice' });
    proxy = await proxyTo(backend.address);
  });

  afterAll(async () => {
    await proxy?.close(500);
    await backend?.stop();
  });

  it('all four call kinds', async () => {
    const target = `127.0.0.1:${proxy.address.port}`;
    const unary = await runPythonClient(target, { method: 'Unary', requests: [{ payload: 'u' }] });
    expect(unary.responses[0]).toMatchObject({ backend: 'nice', payload: 'u' });
    const server = await runPythonClient(target, {
      method: 'ServerStream',
      requests: [{ responseCount: 3 }],
    });
    expect(server.responses.map((r) => r.sequence)).toEqual([0, 1, 2]);
    const client = await runPythonClient(target, {
      method: 'ClientStream',
      requests: [{ payload: 'a' }, { payload: 'b' }],
    });
    expect(client.responses[0]).toMatchObject({ receivedCount: 2, payload: 'b' });
    const bidi = await runPythonClient(target, {
      method: 'Bidi',
      requests: [{ payload: 'x', echoMetadata: ['x-from'] }, { payload: 'y' }],
      metadata: { 'x-from': 'grpcio' },
    });
    expect(bidi.responses[0]!.metadata).toEqual({ 'x-from': 'grpcio' });
    expect(bidi.responses.map((r) => r.payload)).toEqual(['x', 'y']);
    expect(bidi.status.code).toBe(0);
  });
});

describe('nice-grpc client → proxy → connect-node server', () => {
  it('all four call kinds', async () => {
    const server = await startConnectServer({ backend: 'connect' });
    const proxy = await proxyTo(server.address);
    const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
    try {
      expect(await client.unary({ payload: 'u' })).toMatchObject({
        backend: 'connect',
        payload: 'u',
      });
      const sequences: number[] = [];
      for await (const r of client.serverStream({ responseCount: 3 })) sequences.push(r.sequence);
      expect(sequences).toEqual([0, 1, 2]);
      expect(await client.clientStream(requests(4))).toMatchObject({ receivedCount: 4 });
      const payloads: string[] = [];
      for await (const r of client.bidi(requests(3))) payloads.push(r.payload);
      expect(payloads).toEqual(['m0', 'm1', 'm2']);
    } finally {
      close();
      await proxy.close(500);
      await server.stop();
    }
  });
});
