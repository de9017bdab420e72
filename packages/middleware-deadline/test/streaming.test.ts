import { setTimeout as sleep } from 'node:timers/promises';
import { TestServiceDefinition } from '@switchyard/testing';
import { createChannel, createClientFactory, Status } from 'nice-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadlineMiddleware } from '../src/index.js';
import { startDeadlineServer } from './servers.js';

// The deadline covers the whole call, not each message: a stream that outlives it fails midway.
let server: Awaited<ReturnType<typeof startDeadlineServer>>;
let channel: ReturnType<typeof createChannel>;
beforeAll(async () => {
  server = await startDeadlineServer();
  channel = createChannel(server.address);
});
afterAll(() => {
  channel.close();
  return server.stop();
});

const client = () =>
  createClientFactory().use(deadlineMiddleware).create(TestServiceDefinition, channel);

/** Sends a request every 50 ms, 20 in all: longer than any deadline here. */
async function* slowRequests() {
  for (let i = 0; i < 20; i++) {
    yield { payload: String(i) };
    await sleep(50);
  }
}

async function timed(run: () => Promise<number>) {
  const start = Date.now();
  const outcome = await run().then(
    (count) => ({ count, error: undefined }),
    (error: unknown) => ({ count: undefined, error }),
  );
  return { ...outcome, elapsed: Date.now() - start };
}

describe('a deadline that passes mid-stream', () => {
  it('ends a server stream with DEADLINE_EXCEEDED after the messages sent in time', async () => {
    let received = 0;
    const { error, elapsed } = await timed(async () => {
      const stream = client().serverStream({ responseCount: 20, delayMs: 50 }, { deadline: 180 });
      for await (const _ of stream) received++;
      return received;
    });
    expect(error).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(received).toBeGreaterThanOrEqual(2);
    expect(received).toBeLessThan(20);
    expect(elapsed).toBeGreaterThanOrEqual(175);
    expect(elapsed).toBeLessThan(450);
  });

  it('ends a client stream with DEADLINE_EXCEEDED', async () => {
    const { error, elapsed } = await timed(async () => {
      await client().clientStream(slowRequests(), { deadline: 180 });
      return 1;
    });
    expect(error).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(elapsed).toBeGreaterThanOrEqual(175);
    expect(elapsed).toBeLessThan(450);
  });

  it('ends a bidi stream with DEADLINE_EXCEEDED after the answers received in time', async () => {
    let received = 0;
    const { error, elapsed } = await timed(async () => {
      for await (const _ of client().bidi(slowRequests(), { deadline: 180 })) received++;
      return received;
    });
    expect(error).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(received).toBeGreaterThanOrEqual(2);
    expect(received).toBeLessThan(20);
    expect(elapsed).toBeGreaterThanOrEqual(175);
    expect(elapsed).toBeLessThan(450);
  });

  it('lets streams that finish in time complete', async () => {
    const responses = client().serverStream({ responseCount: 3, delayMs: 10 }, { deadline: 2_000 });
    let received = 0;
    for await (const _ of responses) received++;
    expect(received).toBe(3);
  });
});
