import { setTimeout as sleep } from 'node:timers/promises';
import { TestServiceDefinition } from '@switchyard/testing';
import { createClientFactory, Status } from 'nice-grpc';
import { describe, expect, it } from 'vitest';
import { deadlineMiddleware } from '../src/index.js';
import { deadlineServerPerFile } from './servers.js';

// The deadline covers the whole call, not each message: a stream that outlives it fails midway.
const channel = deadlineServerPerFile();

const client = () =>
  createClientFactory().use(deadlineMiddleware).create(TestServiceDefinition, channel());

/** Sends a request every 50 ms, 20 in all: longer than any deadline here. */
async function* slowRequests() {
  for (let i = 0; i < 20; i++) {
    yield { payload: String(i) };
    await sleep(50);
  }
}

/** `call` fails DEADLINE_EXCEEDED at its 180 ms deadline: not before, and not long after. */
async function expectCutAtDeadline(call: () => Promise<unknown>) {
  const start = Date.now();
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  const elapsed = Date.now() - start;
  expect(error).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
  expect(elapsed).toBeGreaterThanOrEqual(175);
  expect(elapsed).toBeLessThan(450);
}

/** Some of the 20 messages arrived before the deadline, not all. */
function expectSomeReceived(received: number) {
  expect(received).toBeGreaterThanOrEqual(2);
  expect(received).toBeLessThan(20);
}

describe('a deadline that passes mid-stream', () => {
  it('ends a server stream with DEADLINE_EXCEEDED after the messages sent in time', async () => {
    let received = 0;
    await expectCutAtDeadline(async () => {
      const stream = client().serverStream({ responseCount: 20, delayMs: 50 }, { deadline: 180 });
      for await (const _ of stream) received++;
    });
    expectSomeReceived(received);
  });

  it('ends a client stream with DEADLINE_EXCEEDED', async () => {
    await expectCutAtDeadline(() => client().clientStream(slowRequests(), { deadline: 180 }));
  });

  it('ends a bidi stream with DEADLINE_EXCEEDED after the answers received in time', async () => {
    let received = 0;
    await expectCutAtDeadline(async () => {
      for await (const _ of client().bidi(slowRequests(), { deadline: 180 })) received++;
    });
    expectSomeReceived(received);
  });

  it('lets streams that finish in time complete', async () => {
    const responses = client().serverStream({ responseCount: 3, delayMs: 10 }, { deadline: 2_000 });
    let received = 0;
    for await (const _ of responses) received++;
    expect(received).toBe(3);
  });
});
