import { connect } from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createTestClient,
  createTestServiceImpl,
  type RunningTestServer,
  startServer,
  TestRequest,
} from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProxyProcess, residentMemory, startProxyProcess } from './support/proxy-process.js';

let backend: RunningTestServer;
let proxy: ProxyProcess;
// Server-stream calls whose cancellation the backend saw, by payload.
const cancelledOnBackend = new Map<string, number>();

beforeAll(async () => {
  backend = await startServer({
    implementation: (name) => {
      const impl = createTestServiceImpl({ backend: name });
      return {
        ...impl,
        serverStream: (request, context) => {
          context.signal.addEventListener('abort', () =>
            cancelledOnBackend.set(request.payload, performance.now()),
          );
          return impl.serverStream(request, context);
        },
      };
    },
  });
  proxy = await startProxyProcess(['--upstream', backend.address]);
});

afterAll(async () => {
  await proxy.stop();
  await backend.stop();
});

describe('streaming through the proxy binary', () => {
  it('streams 256 MiB to a slow reader with the proxy below 150 MB RSS', async () => {
    const { client, close } = createTestClient(proxy.address, {
      channelOptions: { 'grpc.max_receive_message_length': 1 << 20 },
    });
    const size = 64 * 1024;
    const count = 4096; // 256 MiB
    let received = 0;
    let bytes = 0;
    let peakRss = 0;
    try {
      for await (const response of client.serverStream({
        payload: 'big',
        responseSize: size,
        responseCount: count,
      })) {
        expect(response.sequence).toBe(received);
        expect(response.filler.length).toBe(size);
        // Spot-check the content: byte i is i % 256.
        expect(response.filler[received % size]).toBe((received % size) & 0xff);
        received++;
        bytes += response.filler.length;
        // The reader is slow: ~50 MB/s, far below what the backend produces.
        if (received % 4 === 0) await sleep(5);
        if (received % 256 === 0) peakRss = Math.max(peakRss, residentMemory(proxy.child.pid!).rss);
      }
    } finally {
      close();
    }
    const { peak } = residentMemory(proxy.child.pid!);
    console.info(
      `256 MiB through the proxy: peak RSS ${(peak / 2 ** 20).toFixed(1)} MB (sampled max ${(peakRss / 2 ** 20).toFixed(1)} MB)`,
    );
    expect(received).toBe(count);
    expect(bytes).toBe(256 * 2 ** 20);
    expect(peak).toBeLessThan(150 * 2 ** 20);
  }, 120_000);

  it('readers that stall do not stall the calls sharing their upstream connection', async () => {
    // 24 response streams to a client whose window is 0: the proxy holds up to a stream window
    // (1 MiB) of each upstream — 24 MiB on one upstream connection, more than its 16 MiB window.
    const stalled = connect(`http://${proxy.address}`, { settings: { initialWindowSize: 0 } });
    stalled.on('error', () => {});
    const message = Buffer.from(
      TestRequest.encode(
        TestRequest.fromPartial({ payload: 'stalled', responseSize: 64 << 10, responseCount: 64 }),
      ).finish(),
    );
    const framed = Buffer.alloc(5 + message.length);
    framed.writeUInt32BE(message.length, 1);
    message.copy(framed, 5);
    for (let i = 0; i < 24; i++) {
      const stream = stalled.request({
        ':method': 'POST',
        ':path': '/switchyard.testing.v1.TestService/ServerStream',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      stream.on('error', () => {});
      stream.end(framed);
    }
    // Time for the backend to fill every stalled stream's window.
    await sleep(500);
    const { client, close } = createTestClient(proxy.address);
    try {
      for (let i = 0; i < 20; i++) {
        const response = await client.unary(
          { payload: `beside ${i}`, responseSize: 64 << 10 },
          { signal: AbortSignal.timeout(5_000) },
        );
        expect(response.payload).toBe(`beside ${i}`);
      }
    } finally {
      close();
      stalled.destroy();
    }
  });

  it('carries a bidi ping-pong of 10,000 messages in order', async () => {
    const { client, close } = createTestClient(proxy.address);
    const total = 10_000;
    // Each request is sent only after the previous response arrived: a true round trip.
    let answered: () => void = () => {};
    async function* pings(): AsyncIterable<Partial<TestRequest>> {
      for (let i = 0; i < total; i++) {
        const next = new Promise<void>((resolve) => {
          answered = resolve;
        });
        yield { payload: `ping ${i}` };
        await next;
      }
    }
    let expected = 0;
    try {
      for await (const response of client.bidi(pings())) {
        expect(response.payload).toBe(`ping ${expected}`);
        expect(response.sequence).toBe(expected);
        expected++;
        answered();
      }
    } finally {
      close();
    }
    expect(expected).toBe(total);
  }, 120_000);

  it('passes a client cancellation on to the backend', async () => {
    const { client, close } = createTestClient(proxy.address);
    const controller = new AbortController();
    let abortedAt = 0;
    try {
      for await (const _ of client.serverStream(
        { payload: 'to-cancel', responseCount: 1000, delayMs: 20 },
        { signal: controller.signal },
      )) {
        abortedAt = performance.now();
        controller.abort();
      }
    } catch (error) {
      expect((error as Error).name).toBe('AbortError');
    } finally {
      close();
    }
    await expect.poll(() => cancelledOnBackend.get('to-cancel'), { timeout: 2000 }).toBeDefined();
    // The backend learns of it promptly (RST_STREAM CANCEL across the proxy), not at a deadline.
    expect(cancelledOnBackend.get('to-cancel')! - abortedAt).toBeLessThan(500);
  });
});
