import { type CallContext, ServerError, type Status } from 'nice-grpc-common';
import {
  bidiResponses,
  type CallEnvironment,
  clientStreamResponse,
  serverStreamResponses,
  unaryResponse,
} from './behavior.js';
import type { TestServiceImplementation } from './gen/nice/switchyard/testing/v1/test.js';

/** Options for {@link createTestServiceImpl}. */
export interface TestServiceImplOptions {
  /** Reported as `TestResponse.backend`, so a test can tell which server answered. */
  backend: string;
}

/**
 * The nice-grpc implementation of TestService. Delays end early when the
 * call's signal aborts (cancellation, deadline, server force-stop).
 */
export function createTestServiceImpl({
  backend,
}: TestServiceImplOptions): TestServiceImplementation {
  const env = (context: CallContext): CallEnvironment => ({
    backend,
    signal: context.signal,
    metadataValue(key) {
      const values = context.metadata.getAll(key);
      return values.length > 0 ? values.join(', ') : undefined;
    },
    statusError: (code, message) => new ServerError(code as Status, message),
  });
  return {
    unary: (request, context) => unaryResponse(request, env(context)),
    serverStream: (request, context) => serverStreamResponses(request, env(context)),
    clientStream: (requests, context) => clientStreamResponse(requests, env(context)),
    bidi: (requests, context) => bidiResponses(requests, env(context)),
  };
}
