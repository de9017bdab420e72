import { withInboundCall } from '@switchyard/core';
import {
  createTestServiceImpl,
  TestServiceDefinition,
  type TestServiceImplementation,
} from '@switchyard/testing';
import { createServer } from 'nice-grpc';
import type { CallContext } from 'nice-grpc-common';
import { type DeadlineCallContextExt, deadlineServerMiddleware } from '../src/index.js';

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
