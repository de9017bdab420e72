import { createServer, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { staticDiscovery } from '@switchyard/discovery';
import { describe, expect, it } from 'vitest';
import { startProxy } from '../src/index.js';
import { runCalls } from './support/proxy-process.js';
import { grpcFrame, rawCall } from './support/raw-http2.js';

/**
 * A node:http2 backend answering every call with an empty gRPC message after `delayMs`, and
 * counting the streams each of its sessions (each proxy connection) carried.
 */
async function countingBackend(delayMs = 0) {
  const server = createServer();
  const streamsPerSession = new Map<Http2Session, number>();
  const open = new Set<Http2Session>();
  server.on('session', (session) => {
    streamsPerSession.set(session, 0);
    open.add(session);
    session.on('close', () => open.delete(session));
    session.on('error', () => {});
  });
  server.on('stream', (stream) => {
    const session = stream.session!;
    streamsPerSession.set(session, (streamsPerSession.get(session) ?? 0) + 1);
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', async () => {
      if (delayMs > 0) await sleep(delayMs);
      if (stream.destroyed) return;
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc' },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(grpcFrame(Buffer.alloc(0)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Streams carried by each session, in the order the sessions were opened. */
    streams: () => [...streamsPerSession.values()],
    openSessions: () => open.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of open) session.destroy();
        server.close(() => resolve());
      }),
  };
}

const call = (address: string) =>
  rawCall(
    address,
    { ':path': '/pkg.Service/Method', 'content-type': 'application/grpc', te: 'trailers' },
    grpcFrame(Buffer.alloc(0)),
  );

async function until(condition: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

type CountingBackend = Awaited<ReturnType<typeof countingBackend>>;

/**
 * Runs `body` against a proxy in front of one counting backend, whose upstream connections carry
 * at most `maxStreamsPerConnection` streams; both are closed after it, whatever happens.
 */
async function withRecyclingProxy(
  { maxStreamsPerConnection, delayMs = 0 }: { maxStreamsPerConnection: number; delayMs?: number },
  body: (address: string, backend: CountingBackend) => Promise<void>,
): Promise<void> {
  const backend = await countingBackend(delayMs);
  const proxy = await startProxy({
    listen: '127.0.0.1:0',
    discovery: staticDiscovery([backend.address]),
    upstream: { maxStreamsPerConnection },
  });
  try {
    await body(`127.0.0.1:${proxy.address.port}`, backend);
  } finally {
    await proxy.close(500);
    await backend.close();
  }
}

describe('upstream connection recycling', () => {
  it('replaces a connection after maxStreamsPerConnection streams; the old one drains and closes', async () => {
    await withRecyclingProxy({ maxStreamsPerConnection: 10 }, async (address, backend) => {
      for (let i = 0; i < 35; i++) {
        expect((await call(address)).trailers?.['grpc-status']).toBe('0');
      }
      const streams = backend.streams();
      expect(streams.reduce((a, b) => a + b, 0)).toBe(35);
      // A connection is replaced only once it has carried its share, and only then.
      expect(streams.length).toBeGreaterThanOrEqual(3);
      for (const carried of streams.slice(0, -1)) expect(carried).toBeGreaterThanOrEqual(10);
      // The replaced connections are closed once drained; only the current one stays open.
      await until(() => backend.openSessions() === 1);
    });
  });

  it('fails no call, in flight or new, while connections are replaced under concurrency', async () => {
    await withRecyclingProxy(
      { maxStreamsPerConnection: 10, delayMs: 20 },
      async (address, backend) => {
        const results = await runCalls(300, 16, () => call(address));
        expect(results.map((r) => r.trailers?.['grpc-status'] ?? `reset ${r.rstCode}`)).toEqual(
          new Array(300).fill('0'),
        );
        expect(backend.streams().length).toBeGreaterThanOrEqual(10);
        await until(() => backend.openSessions() === 1);
      },
    );
  });

  it('0 keeps one connection for as long as it works', async () => {
    await withRecyclingProxy({ maxStreamsPerConnection: 0 }, async (address, backend) => {
      for (let i = 0; i < 35; i++) await call(address);
      expect(backend.streams()).toEqual([35]);
    });
  });
});
