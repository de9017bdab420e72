import type { Call, Outcome } from '@switchyard/core';
import { type Layer, LayerService } from './service.js';

/**
 * A call on its way to one endpoint, as the balancer hands it down: which endpoint it picked,
 * and what to tell when the response begins. Layers below the balancer pass it on as they got it
 * (`{ ...call, signal }` keeps both).
 */
export interface UpstreamCall extends Call {
  /** `host:port` of the endpoint the balancer picked. */
  readonly endpoint: string;
  /** The response began (its headers arrived); called once, or at the end of an attempt without one. */
  readonly onResponse: () => void;
}

/**
 * Where a served call becomes the call the proxy makes upstream: a client call whose `inbound`
 * is the client's — its deadline, cancellation, trace context and caller are what the layers
 * after this one inherit — with the headers the client's call forwards, copied on write so each
 * attempt can change its own.
 */
class UpstreamCallLayer extends LayerService {
  override call(served: Call): Promise<Outcome> {
    return this.inner.call({
      side: 'client',
      method: served.method,
      headers: served.transport.forwardHeaders.clone(),
      deadline: undefined,
      signal: served.signal,
      peer: undefined,
      inbound: served,
      attempt: 1,
      transport: served.transport,
    });
  }
}

/** Layer: the served call goes on as the call made upstream for it. */
export const upstreamCall: Layer = (inner) => new UpstreamCallLayer(inner);
