import { constants } from 'node:http2';
import { callScopeServerMiddleware } from '@switchyard/nice-grpc';
import { createChannel, createClientFactory, createServer } from 'nice-grpc';
import type { CallContext } from 'nice-grpc-common';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cancellationMiddleware } from '../src/index.js';
import { Hop, startLastHop, type Text } from './hop.js';

// B enters the call scope with core's callScopeServerMiddleware alone: cancellation works
// without the deadline package. Its handler runs whatever the test puts in `bHandler`.
let c: Awaited<ReturnType<typeof startLastHop>>;
let toC: ReturnType<typeof createToC>;
let bHandler: (context: CallContext) => Promise<Text>;
let a: ReturnType<typeof createToC>;
const cleanup: (() => unknown)[] = [];

function createToC(address: string) {
  const channel = createChannel(address);
  cleanup.push(() => channel.close());
  return createClientFactory().use(cancellationMiddleware).create(Hop, channel);
}

beforeAll(async () => {
  c = await startLastHop();
  cleanup.push(c.stop);
  toC = createToC(c.address);
  const b = createServer().use(callScopeServerMiddleware());
  b.add(Hop, {
    unary: (_: Text, context: CallContext) => bHandler(context),
    clientStream: () => Promise.reject(new Error('unused')),
    serverStream: () => Promise.reject(new Error('unused')),
    bidi: () => Promise.reject(new Error('unused')),
  } as never);
  const port = await b.listen('127.0.0.1:0');
  cleanup.push(() => b.forceShutdown());
  a = createToC(`127.0.0.1:${port}`);
});
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});
beforeEach(() => c.settled());

/** Calls B, waits until B's handler has a call running at C, then cancels B's call. */
async function cancelWhileCRuns() {
  const controller = new AbortController();
  const started = c.nextCall();
  const call = a.unary({ value: 'a' }, { signal: controller.signal }).catch((e: unknown) => e);
  await started;
  const closedBefore = c.closed.length;
  controller.abort();
  return { outcome: await call, closedBefore };
}

describe('cancellationMiddleware', () => {
  it('cancels calls made while serving when the inbound call is cancelled', async () => {
    let downstream: Promise<unknown> = Promise.resolve();
    bHandler = () => {
      downstream = toC.unary({ value: 'b' }).catch((e: unknown) => e);
      return downstream as Promise<Text>;
    };
    const { closedBefore } = await cancelWhileCRuns();
    expect(await downstream).toMatchObject({ name: 'AbortError' });
    const [reset] = (await c.streamsClosed(closedBefore + 1)).slice(closedBefore);
    expect(reset?.rstCode).toBe(constants.NGHTTP2_CANCEL);
  });

  it("links the caller's own signal and the inbound one: either cancels the call", async () => {
    const own = new AbortController();
    let downstream: Promise<unknown> = Promise.resolve();
    bHandler = () => {
      downstream = toC.unary({ value: 'b' }, { signal: own.signal }).catch((e: unknown) => e);
      return downstream as Promise<Text>;
    };
    await cancelWhileCRuns();
    expect(await downstream).toMatchObject({ name: 'AbortError' });

    let ownFailure: Promise<unknown> = Promise.resolve();
    bHandler = async () => {
      const started = c.nextCall();
      ownFailure = toC.unary({ value: 'b' }, { signal: own.signal }).catch((e: unknown) => e);
      await started;
      own.abort();
      await ownFailure;
      return { value: 'own signal handled' };
    };
    const response = await a.unary({ value: 'a' });
    expect(response.value).toBe('own signal handled');
    expect(await ownFailure).toMatchObject({ name: 'AbortError' });
  });

  it('lets a call opt out with propagateCancellation: false', async () => {
    const detach = new AbortController();
    let detached: Promise<unknown> = Promise.resolve();
    bHandler = () => {
      detached = toC
        .unary({ value: 'b' }, { propagateCancellation: false, signal: detach.signal })
        .catch((e: unknown) => e);
      return detached as Promise<Text>;
    };
    const { closedBefore } = await cancelWhileCRuns();
    await new Promise((resolve) => setTimeout(resolve, 100));
    // 100 ms after its inbound call was cancelled, the call still runs at C.
    expect(c.closed.length).toBe(closedBefore);
    detach.abort();
    expect(await detached).toMatchObject({ name: 'AbortError' });
  });

  it('fails a call started after the inbound call was cancelled without reaching the server', async () => {
    let late: Promise<unknown> = Promise.resolve();
    let handlerSignal: AbortSignal | undefined;
    bHandler = async (context) => {
      handlerSignal = context.signal;
      // Awaited rather than called from the abort listener: a listener runs in the context of
      // whoever aborted, outside the call scope; code after an await is back inside it.
      await new Promise((resolve) => context.signal.addEventListener('abort', resolve));
      late = toC.unary({ value: 'b' }).catch((e: unknown) => e);
      throw context.signal.reason;
    };
    const controller = new AbortController();
    const call = a.unary({ value: 'a' }, { signal: controller.signal }).catch((e: unknown) => e);
    while (handlerSignal === undefined) await new Promise((resolve) => setTimeout(resolve, 1));
    const callsBefore = c.calls.length;
    controller.abort();
    await call;
    while (!handlerSignal.aborted) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(await late).toMatchObject({ name: 'AbortError' });
    expect(c.calls.length).toBe(callsBefore);
  });

  it('passes calls made outside any handler through untouched', async () => {
    const controller = new AbortController();
    const started = c.nextCall();
    const call = toC
      .unary({ value: 'direct' }, { signal: controller.signal })
      .catch((e: unknown) => e);
    await started;
    controller.abort();
    expect(await call).toMatchObject({ name: 'AbortError' });
  });
});
