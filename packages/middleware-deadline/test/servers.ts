import { withInboundCall } from '@switchyard/nice-grpc';
import {
  type CleanupSteps,
  createTestServiceImpl,
  TestServiceDefinition,
  type TestServiceImplementation,
} from '@switchyard/testing';
import { createChannel, createClientFactory, createServer } from 'nice-grpc';
import type { CallContext, ClientMiddleware } from 'nice-grpc-common';
import { afterAll, beforeAll } from 'vitest';
import {
  type DeadlineCallContextExt,
  type DeadlineOptions,
  deadlineMiddleware,
  deadlineServerMiddleware,
} from '../src/index.js';

export type DeadlineImplementation = Partial<TestServiceImplementation<DeadlineCallContextExt>>;

/** What a handler saw of its deadline, reported in `TestResponse.metadata`. */
export function observedDeadline(context: CallContext & DeadlineCallContextExt) {
  return {
    deadline: String(context.deadline?.getTime()),
    timeoutMs: String(context.timeoutMs()),
  };
}

/**
 * A nice-grpc TestService server with the inbound-call interceptor and
 * `deadlineServerMiddleware`, on 127.0.0.1; methods not overridden behave as the fixture.
 */
export async function startDeadlineServer(implementation: DeadlineImplementation = {}) {
  const server = createServer(withInboundCall()).use(deadlineServerMiddleware);
  server.add(TestServiceDefinition, {
    ...createTestServiceImpl({ backend: 'deadline' }),
    ...implementation,
  });
  const port = await server.listen('127.0.0.1:0');
  return { address: `127.0.0.1:${port}`, server, stop: () => server.forceShutdown() };
}

/**
 * Registers, in the calling test file, one {@link startDeadlineServer} for all its tests, and a
 * channel to it; returns the channel's getter (the channel exists once the tests run).
 */
export function deadlineServerPerFile(implementation: DeadlineImplementation = {}) {
  let server: Awaited<ReturnType<typeof startDeadlineServer>>;
  let channel: ReturnType<typeof createChannel>;
  beforeAll(async () => {
    server = await startDeadlineServer(implementation);
    channel = createChannel(server.address);
  });
  afterAll(() => {
    channel.close();
    return server.stop();
  });
  return () => channel;
}

/** A channel to `address`, closed after the test. */
export function channelTo(cleanup: CleanupSteps, address: string) {
  const channel = createChannel(address);
  cleanup.defer(() => channel.close());
  return channel;
}

/** A TestService client of `address` through `middleware`; its channel is closed after the test. */
export function deadlineClient(
  cleanup: CleanupSteps,
  address: string,
  middleware: ClientMiddleware<DeadlineOptions> = deadlineMiddleware,
) {
  return createClientFactory()
    .use(middleware)
    .create(TestServiceDefinition, channelTo(cleanup, address));
}
