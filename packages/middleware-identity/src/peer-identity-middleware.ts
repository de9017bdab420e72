import { type PeerIdentity, Status } from '@switchyard/core';
import { currentCallScope, currentInboundCall, serveInCallScope } from '@switchyard/nice-grpc';
import {
  type CallContext,
  type ClientMiddleware,
  Metadata,
  ServerError,
  type ServerMiddleware,
  type ServerMiddlewareCall,
} from 'nice-grpc-common';
import { compileGlob } from './glob.js';
import { certificateIdentity, type VerifiedPeerIdentity } from './peer-identity.js';

/** The call context extension added by {@link peerIdentityServerMiddleware}. */
export interface PeerIdentityContext {
  /** The verified caller; `undefined` when the client presented no verified certificate. */
  peerIdentity: VerifiedPeerIdentity | undefined;
}

/** Linkerd's header for the client identity it verified. */
export const DEFAULT_IDENTITY_HEADER = 'l5d-client-id';

/** Options of {@link peerIdentityServerMiddleware}. */
export interface PeerIdentityOptions {
  /**
   * Identities (globs, see {@link compileGlob}) of proxies allowed to name their client in the
   * {@link identityHeader}. Nobody by default: the header is then removed from every call.
   */
  trustedProxies?: readonly string[];
  /** The header a trusted proxy names its client in. Default `l5d-client-id`. */
  identityHeader?: string;
}

const MISSING_INTERCEPTOR =
  'peerIdentityServerMiddleware needs the grpc-js call: create the server with ' +
  "createServer(withInboundCall()) from '@switchyard/core'";

/**
 * Server middleware that establishes who sent each call, from the client certificate the TLS
 * handshake verified (SPIFFE ID, else DNS SAN, else subject CN), and hands it to the handler as
 * `context.peerIdentity` and to calls the handler makes through the call scope's `peer`.
 *
 * Needs the grpc-js call behind nice-grpc's: create the server with `withInboundCall()`
 * (`@switchyard/core`, grpc-js ≥ 1.13 for `getAuthContext`).
 *
 * A peer listed in `trustedProxies` may name the client it forwards for in the identity header
 * (as Linkerd's proxy does with `l5d-client-id`); the header then becomes the identity. From any
 * other peer the header is deleted from the call's metadata before the handler runs, so a client
 * cannot claim an identity by sending it.
 */
export function peerIdentityServerMiddleware({
  trustedProxies = [],
  identityHeader = DEFAULT_IDENTITY_HEADER,
}: PeerIdentityOptions = {}): ServerMiddleware<PeerIdentityContext> {
  const trusted = trustedProxies.map(compileGlob);
  const header = identityHeader.toLowerCase();
  return async function* peerIdentity<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, PeerIdentityContext>,
    context: CallContext,
  ) {
    const inbound = currentInboundCall();
    if (inbound === undefined) throw new ServerError(Status.INTERNAL, MISSING_INTERCEPTOR);
    const certificate = inbound.authContext.sslPeerCertificate;
    const tlsPeer = certificate && certificateIdentity(certificate);
    let peerIdentity: VerifiedPeerIdentity | undefined = tlsPeer && {
      id: tlsPeer.id,
      source: tlsPeer.source,
      tlsPeer,
    };
    if (tlsPeer && trusted.some((matches) => matches(tlsPeer.id))) {
      const claimed = context.metadata.getAll(header);
      if (claimed.length > 0) {
        // Repeated headers may arrive joined with ", ", and no identity holds a comma or a space.
        const [value] = claimed;
        if (claimed.length > 1 || typeof value !== 'string' || !/^[^\s,]+$/.test(value)) {
          throw new ServerError(Status.UNAUTHENTICATED, `malformed ${header} header`);
        }
        peerIdentity = { id: value, source: 'header', tlsPeer };
      }
    } else {
      context.metadata.delete(header);
    }
    // The scope gets the plain identity: outgoing calls need who, not the certificate.
    const peer: PeerIdentity | undefined = peerIdentity && {
      id: peerIdentity.id,
      source: peerIdentity.source,
    };
    return yield* serveInCallScope<Response, Response | void>(
      call.method.path,
      context,
      { peer },
      () => call.next(call.request, { ...context, peerIdentity }),
    );
  };
}

/** Options of {@link identityHeaderClientMiddleware}. */
export interface IdentityHeaderClientOptions {
  /** Default `l5d-client-id`. */
  identityHeader?: string;
}

/**
 * Client middleware for proxies and gateways: names the caller of the inbound call being served
 * (the call scope's `peer`) in the identity header of each outgoing call, for a server that
 * lists this service in its `trustedProxies`. Calls made outside an identified inbound call, and
 * calls that set the header themselves, are left alone.
 */
export function identityHeaderClientMiddleware({
  identityHeader = DEFAULT_IDENTITY_HEADER,
}: IdentityHeaderClientOptions = {}): ClientMiddleware {
  const header = identityHeader.toLowerCase();
  return (call, options) => {
    const peer = currentCallScope()?.peer;
    if (peer === undefined || options.metadata?.has(header)) {
      return call.next(call.request, options);
    }
    const metadata = Metadata(options.metadata).set(header, peer.id);
    return call.next(call.request, { ...options, metadata });
  };
}
