import { createConnection, createServer, type Server } from 'node:net';
import { Status, statusName } from '@switchyard/core';
import { staticDiscovery } from '@switchyard/discovery';
import { createTestClient } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningProxy, startProxy } from '../src/index.js';
import { startBackendProcess } from './support/backend-process.js';
import { grpcUnary } from './support/grpc-call.js';
import { grpcFrame, rawCall, startRawBackend } from './support/raw-http2.js';

// Every way a call can go wrong ends in a clear gRPC status, and the proxy keeps serving.

const NO_EJECTION = { consecutiveFailures: Number.MAX_SAFE_INTEGER };

let raw: Awaited<ReturnType<typeof startRawBackend>>;
let proxy: RunningProxy;
let address: string;
const resetsSeenByBackend: number[] = [];

beforeAll(async () => {
  raw = await startRawBackend((stream, headers) => {
    const path = headers[':path'] as string;
    const [, kind, code] = path.split('/');
    stream.on('close', () => {
      if (kind === 'hang') resetsSeenByBackend.push(stream.rstCode);
    });
    switch (kind) {
      case 'rst':
        stream.close(Number(code));
        return;
      case 'rst-after':
        // destroy() resets at once (INTERNAL_ERROR); close(code) would first end the stream.
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.write(grpcFrame(Buffer.from('partial')), () => stream.destroy(new Error('boom')));
        return;
      case 'no-trailers':
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.end(grpcFrame(Buffer.from('no status follows')));
        return;
      case 'hang':
        return; // never answers
    }
  });
  proxy = await startProxy({
    listen: '127.0.0.1:0',
    discovery: staticDiscovery([raw.address]),
    // These calls fail on purpose; the outlier breaker (tested elsewhere) must not eject the
    // backend between them.
    outlier: NO_EJECTION,
  });
  address = `127.0.0.1:${proxy.address.port}`;
});

afterAll(async () => {
  await proxy.close(500);
  await raw.close();
});

describe('upstream resets map to the status PROTOCOL-HTTP2 gives them', () => {
  const cases: [string, number, Status][] = [
    ['REFUSED_STREAM', 7, Status.UNAVAILABLE],
    ['CANCEL', 8, Status.CANCELLED],
    ['ENHANCE_YOUR_CALM', 11, Status.RESOURCE_EXHAUSTED],
    ['INADEQUATE_SECURITY', 12, Status.PERMISSION_DENIED],
    ['INTERNAL_ERROR', 2, Status.INTERNAL],
    ['PROTOCOL_ERROR', 1, Status.INTERNAL],
  ];
  for (const [name, code, expected] of cases) {
    it(`${name} before the response → ${statusName(expected)}, naming the upstream`, async () => {
      const result = await grpcUnary(address, `/rst/${code}`);
      expect(result.code).toBe(expected);
      expect(result.details).toBe(`upstream ${raw.address} reset the stream (${name})`);
    });
  }

  it('a reset after the response began ends it with the mapped status in trailers', async () => {
    const result = await rawCall(address, {
      ':path': '/rst-after/x',
      'content-type': 'application/grpc',
    });
    expect(result.trailersOnly).toBe(false);
    expect(result.data.equals(grpcFrame(Buffer.from('partial')))).toBe(true);
    expect(result.trailers).toMatchObject({
      'grpc-status': String(Status.INTERNAL),
      'grpc-message': `upstream ${raw.address} reset the stream (INTERNAL_ERROR)`,
    });
  });
});

describe('broken upstreams', () => {
  it('a response without trailers → INTERNAL', async () => {
    const result = await grpcUnary(address, '/no-trailers/x');
    expect(result.code).toBe(Status.INTERNAL);
    expect(result.details).toBe(`upstream ${raw.address} ended the response without trailers`);
  });

  it('a hanging upstream: the client deadline ends the call and the upstream stream is cancelled', async () => {
    const result = await grpcUnary(address, '/hang/x', { deadlineMs: 300 });
    expect(result.code).toBe(Status.DEADLINE_EXCEEDED);
    await expect.poll(() => resetsSeenByBackend.at(-1), { timeout: 2000 }).toBe(8); // CANCEL
  });

  it('an upstream process that dies mid-stream → UNAVAILABLE naming it', async () => {
    const backend = await startBackendProcess('doomed');
    const doomedProxy = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery([backend.address]),
      outlier: NO_EJECTION,
    });
    const { client, close } = createTestClient(`127.0.0.1:${doomedProxy.address.port}`);
    try {
      const stream = client.serverStream({ responseCount: 100, delayMs: 20 });
      let received = 0;
      const outcome = (async () => {
        for await (const _ of stream) {
          if (++received === 3) backend.child.kill('SIGKILL');
        }
      })();
      await expect(outcome).rejects.toMatchObject({
        code: Status.UNAVAILABLE,
        details: expect.stringContaining(`upstream ${backend.address}`),
      });
      expect(received).toBeGreaterThanOrEqual(3);
    } finally {
      close();
      await doomedProxy.close(500);
      await backend.stop();
    }
  });
});

describe('upstreams that cannot be reached', () => {
  async function failfastCall(upstream: string) {
    const lonely = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery([upstream]),
      admission: { failfastMs: 300 },
      upstream: { connectTimeoutMs: 200 },
    });
    try {
      const first = await grpcUnary(`127.0.0.1:${lonely.address.port}`, '/a/b');
      // In failfast, the next call fails at once instead of waiting again.
      const second = await grpcUnary(`127.0.0.1:${lonely.address.port}`, '/a/b');
      return { first, second };
    } finally {
      await lonely.close(100);
    }
  }

  it('a refused connection → UNAVAILABLE naming the upstream and the reason', async () => {
    const closedPort = await freePort();
    const { first, second } = await failfastCall(`127.0.0.1:${closedPort}`);
    expect(first.code).toBe(Status.UNAVAILABLE);
    expect(first.details).toContain(`127.0.0.1:${closedPort}`);
    expect(first.details).toContain('ECONNREFUSED');
    expect(second.code).toBe(Status.UNAVAILABLE);
    expect(second.ms).toBeLessThan(first.ms);
  });

  it('a peer that accepts but never speaks HTTP/2 → UNAVAILABLE after the connect timeout', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const { first } = await failfastCall(`127.0.0.1:${port}`);
      expect(first.code).toBe(Status.UNAVAILABLE);
      expect(first.details).toContain(`no HTTP/2 SETTINGS from 127.0.0.1:${port} within 200 ms`);
    } finally {
      silent.close();
    }
  });
});

describe('bad input from clients', () => {
  it('garbage bytes get the connection closed; the proxy keeps serving', async () => {
    const reply = await exchange(
      address,
      Buffer.from('\x16\x03\x01 this is not HTTP/2 at all, not even close'),
    );
    expect(reply.closed).toBe(true);
    const ok = await grpcUnary(address, '/no-trailers/x');
    expect(ok.code).toBe(Status.INTERNAL); // served normally, by the raw backend
  });

  it('a client that connects and says nothing is disconnected after the handshake timeout', async () => {
    const strict = await startProxy({
      listen: { address: '127.0.0.1:0', handshakeTimeoutMs: 200 },
      discovery: staticDiscovery([raw.address]),
    });
    try {
      const started = performance.now();
      const reply = await exchange(`127.0.0.1:${strict.address.port}`, Buffer.alloc(0));
      expect(reply.closed).toBe(true);
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      await strict.close(100);
    }
  });

  it('an HTTP/1.1 request gets a readable HTTP/1.1 answer', async () => {
    const reply = await exchange(address, Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
    expect(reply.text).toMatch(/^HTTP\/1\.1 505 /);
    expect(reply.closed).toBe(true);
  });

  it('a request that is not gRPC gets 405 or 415 with a grpc-status', async () => {
    const get = await rawCall(address, { ':method': 'GET', ':path': '/' });
    expect(get.headers[':status']).toBe(405);
    expect(get.headers['grpc-status']).toBe(String(Status.INTERNAL));
    const text = await rawCall(address, { ':path': '/a/b', 'content-type': 'text/plain' });
    expect(text.headers[':status']).toBe(415);
    expect(text.data.toString()).toContain('content-type text/plain is not gRPC');
  });

  it('oversize metadata → RESOURCE_EXHAUSTED, and the connection stays usable', async () => {
    const big = await rawCall(
      address,
      { ':path': '/a/b', 'content-type': 'application/grpc', 'x-big': 'a'.repeat(80_000) },
      grpcFrame(Buffer.alloc(0)),
      { maxSendHeaderBlockLength: 1 << 20 },
    );
    expect(big.headers['grpc-status']).toBe(String(Status.RESOURCE_EXHAUSTED));
    expect(big.headers['grpc-message']).toContain('exceeds');
    const ok = await grpcUnary(address, '/no-trailers/x');
    expect(ok.code).toBe(Status.INTERNAL);
  });
});

/** Writes `bytes` on a fresh connection; collects the reply until the proxy closes it. */
function exchange(target: string, bytes: Buffer): Promise<{ text: string; closed: boolean }> {
  const [host, port] = target.split(':');
  return new Promise((resolve) => {
    const socket = createConnection(Number(port), host, () => socket.write(bytes));
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve({ text, closed: true }));
    setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, 3000).unref();
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
