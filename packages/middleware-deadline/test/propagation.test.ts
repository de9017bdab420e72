import { constants } from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { CleanupSteps } from '@switchyard/testing';
import { ClientError, Status } from 'nice-grpc';
import { afterEach, describe, expect, it } from 'vitest';
import { type DeadlineClientOptions, deadlineClientMiddleware } from '../src/index.js';
import {
  type DeadlineImplementation,
  deadlineClient,
  observedDeadline,
  startDeadlineServer,
} from './servers.js';
import { startWireServer } from './wire.js';

const UNARY = '/switchyard.testing.v1.TestService/Unary';

const cleanup = new CleanupSteps();
afterEach(() => cleanup.run());

function clientFor(address: string, options: DeadlineClientOptions = {}) {
  return deadlineClient(cleanup, address, deadlineClientMiddleware(options));
}

async function start(implementation: DeadlineImplementation) {
  const server = await startDeadlineServer(implementation);
  cleanup.defer(server.stop);
  return server;
}

/** C: reports the deadline it saw, and when its handler ran. */
async function startReportingC() {
  const c = await start({
    unary: async (_, context) => ({
      metadata: { ...observedDeadline(context), handledAt: String(Date.now()) },
    }),
  });
  return c;
}

describe('a call made while serving an inbound call', () => {
  it('inherits the inbound deadline minus the offset, hop after hop', async () => {
    const offset = 20;
    const c = await startReportingC();
    const toC = clientFor(c.address, { propagationOffset: offset });
    const b = await start({ unary: () => toC.unary({}) });
    const sentAt = Date.now();
    const response = await clientFor(b.address).unary({}, { deadline: new Date(sentAt + 2_000) });
    const seen = Number(response.metadata.deadline);
    // grpc-timeout is relative, so each hop's deadline also moves later by the time the request
    // spent in transit; the offset exists to cover that.
    const transit = Number(response.metadata.handledAt) - sentAt;
    expect(seen).toBeLessThanOrEqual(sentAt + 2_000 - offset + transit);
    expect(seen).toBeGreaterThanOrEqual(sentAt + 2_000 - offset - 1);
  });

  it('keeps its own deadline when that is sooner', async () => {
    const c = await startReportingC();
    const toC = clientFor(c.address);
    const b = await start({ unary: () => toC.unary({}, { deadline: 300 }) });
    const response = await clientFor(b.address).unary({}, { deadline: 5_000 });
    expect(Number(response.metadata.timeoutMs)).toBeLessThanOrEqual(300);
    expect(Number(response.metadata.timeoutMs)).toBeGreaterThan(200);
  });

  it('does not inherit with propagateDeadline: false', async () => {
    const c = await startReportingC();
    const toC = clientFor(c.address);
    const b = await start({
      unary: async () => {
        const detached = await toC.unary({}, { propagateDeadline: false });
        const own = await toC.unary({}, { propagateDeadline: false, deadline: 10_000 });
        return {
          metadata: { detached: detached.metadata.timeoutMs!, own: own.metadata.timeoutMs! },
        };
      },
    });
    const response = await clientFor(b.address).unary({}, { deadline: 2_000 });
    expect(response.metadata.detached).toBe('undefined');
    expect(Number(response.metadata.own)).toBeGreaterThan(9_000);
  });

  it('is cancelled when the inherited deadline passes, before the inbound call expires', async () => {
    const hung = await startWireServer({ answer: false });
    cleanup.defer(hung.stop);
    const toC = clientFor(hung.address, { propagationOffset: 500 });
    const b = await start({ unary: () => toC.unary({}) });
    const start_ = Date.now();
    const error = await clientFor(b.address)
      .unary({}, { deadline: 1_000 })
      .catch((e: unknown) => e);
    const elapsed = Date.now() - start_;
    // B's call to C gave up at 500 ms, well before A's own deadline, and B said why.
    expect(error).toEqual(
      new ClientError(
        UNARY,
        Status.DEADLINE_EXCEEDED,
        `Deadline exceeded (inherited from ${UNARY})`,
      ),
    );
    expect(elapsed).toBeGreaterThanOrEqual(490);
    expect(elapsed).toBeLessThan(1_000);
    expect(await hung.received[0]?.closed).toBe(constants.NGHTTP2_CANCEL);
  });

  it('fails at once, without reaching the server, once the inherited deadline has passed', async () => {
    const wire = await startWireServer({ answer: true });
    cleanup.defer(wire.stop);
    const toC = clientFor(wire.address, { propagationOffset: 900 });
    const b = await start({
      unary: async () => {
        // Past the inherited deadline (1000 − 900 ms), well within the inbound one.
        await sleep(150);
        const error = await toC.unary({}).catch((e: unknown) => e);
        return { payload: error instanceof ClientError ? error.details : 'succeeded' };
      },
    });
    const response = await clientFor(b.address).unary({}, { deadline: 1_000 });
    expect(response.payload).toBe(`Deadline exceeded (inherited from ${UNARY})`);
    expect(wire.received).toHaveLength(0);
  });

  it('passes through untouched outside a handler and without deadlines', async () => {
    const wire = await startWireServer({ answer: true });
    cleanup.defer(wire.stop);
    const client = deadlineClient(cleanup, wire.address);
    await client.unary({});
    expect(wire.received[0]?.headers['grpc-timeout']).toBeUndefined();
  });
});
