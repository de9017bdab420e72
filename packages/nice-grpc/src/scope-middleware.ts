import type { Interceptor } from '@switchyard/core';
import { type ClientMiddleware, Metadata, type ServerMiddleware } from 'nice-grpc-common';
import { currentServedCall, DEFAULT_FORWARD_HEADERS } from './call-scope.js';
import { serverMiddleware } from './server.js';

/** Options of {@link callScopeServerMiddleware}. */
export interface CallScopeServerOptions {
  /** Request headers that outgoing calls made by the handler pass on. */
  forwardHeaders?: readonly string[];
}

/**
 * Server middleware that establishes the call scope for every inbound call, so that calls made
 * by its handler can find it. Every Switchyard server middleware establishes it too; install
 * this one on its own when none of them is used, or to forward more headers than the trace
 * context and baggage.
 */
export function callScopeServerMiddleware({
  forwardHeaders = DEFAULT_FORWARD_HEADERS,
}: CallScopeServerOptions = {}): ServerMiddleware {
  const extra = forwardHeaders.filter((header) => !DEFAULT_FORWARD_HEADERS.includes(header));
  const forwarding: Interceptor = (call, next) => {
    const forward = call.transport.forwardHeaders;
    for (const header of extra) {
      // A layer before this one may have set it already (a span's own context): that value wins.
      if (forward.has(header)) continue;
      for (const value of call.headers.getAll(header)) forward.append(header, value);
    }
    return next(call);
  };
  return serverMiddleware(forwarding);
}

/**
 * Client middleware that sends the current scope's forwarded headers with every outgoing call,
 * unless the call sets them itself.
 */
export const forwardScopeMetadata: ClientMiddleware = (call, options) => {
  const forward = currentServedCall()?.transport.forwardHeaders;
  if (forward === undefined || forward[Symbol.iterator]().next().done)
    return call.next(call.request, options);
  const metadata = Metadata(options.metadata);
  for (const [key, value] of forward) {
    if (!options.metadata?.has(key)) metadata.append(key, value);
  }
  return call.next(call.request, { ...options, metadata });
};
