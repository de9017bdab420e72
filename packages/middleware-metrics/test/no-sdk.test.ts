import { CleanupSteps } from '@switchyard/testing';
import type { CallContext, ClientMiddlewareCall, ServerMiddlewareCall } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsClientMiddleware, metricsServerMiddleware } from '../src/index.js';
import { scrapedMeter } from './harness.js';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

const method = {
  path: '/switchyard.testing.v1.TestService/Unary',
  requestStream: false,
  responseStream: false,
  options: {},
};

/** A call whose continuation is a marker generator, to see whether a middleware wraps it. */
function markedCall() {
  // A unary continuation: no message yielded, the response returned.
  const continuation = (async function* () {
    yield* [];
    return {};
  })();
  const call = {
    method,
    requestStream: false,
    responseStream: false,
    request: {},
    next: () => continuation,
  };
  return { continuation, call };
}

describe('metrics with no meter provider registered (no SDK)', () => {
  it('passes calls through untouched: every measurement would be dropped', () => {
    const server = markedCall();
    const served = metricsServerMiddleware()(
      server.call as unknown as ServerMiddlewareCall<object, object>,
      {} as CallContext,
    );
    expect(served).toBe(server.continuation);
    const client = markedCall();
    const sent = metricsClientMiddleware()(
      client.call as unknown as ClientMiddlewareCall<object, object>,
      {},
    );
    expect(sent).toBe(client.continuation);
  });

  it('measures with a meter provider', async () => {
    const scraped = await scrapedMeter(cleanup);
    const { continuation, call } = markedCall();
    const served = metricsServerMiddleware({ meterProvider: scraped.meterProvider })(
      call as unknown as ServerMiddlewareCall<object, object>,
      { signal: new AbortController().signal } as CallContext,
    );
    expect(served).not.toBe(continuation);
    await served.next();
    const families = [...(await scraped.scrape()).values()];
    expect(families.some((family) => family.histograms.length > 0)).toBe(true);
  });
});
