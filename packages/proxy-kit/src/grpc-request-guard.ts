import { type Call, type Outcome, proxyOutcome, Status } from '@switchyard/core';
import type { ProxyCall } from './proxy-call.js';
import { type Layer, LayerService } from './service.js';

// application/grpc, application/grpc+proto, application/grpc;charset=… — not grpc-web.
const GRPC_CONTENT_TYPE = /^application\/grpc(?:$|[+;])/;

/**
 * Answers requests the proxy must not forward, before they take a queue slot: metadata over the
 * size limit gets RESOURCE_EXHAUSTED; a request that is not gRPC gets HTTP 405 (method other than
 * POST) or 415 (another content type — PROTOCOL-HTTP2 asks servers for 415), each with a
 * `grpc-status` so that gRPC-aware clients also get a clear status.
 */
class GrpcRequestGuard extends LayerService {
  override call(call: Call): Promise<Outcome> {
    const proxied = call.transport as ProxyCall;
    const headers = proxied.requestHeaders;
    if (headers.oversize) {
      return Promise.resolve(
        proxyOutcome(
          Status.RESOURCE_EXHAUSTED,
          `request metadata of ${headers.size} bytes exceeds the proxy's limit`,
        ),
      );
    }
    const method = headers.get(':method');
    const contentType = headers.get('content-type');
    if (method === 'POST' && contentType !== undefined && GRPC_CONTENT_TYPE.test(contentType)) {
      return this.inner.call(call);
    }
    return Promise.resolve(
      method !== 'POST'
        ? proxied.reject(
            405,
            Status.INTERNAL,
            `proxy-kit: ${method} is not a gRPC request (gRPC uses POST)`,
          )
        : proxied.reject(
            415,
            Status.INTERNAL,
            `proxy-kit: content-type ${contentType ?? '(none)'} is not gRPC`,
          ),
    );
  }
}

/** Layer: rejects requests that are not gRPC (or too large to forward) with a clear answer. */
export const grpcRequestGuard: Layer = (inner) => new GrpcRequestGuard(inner);
