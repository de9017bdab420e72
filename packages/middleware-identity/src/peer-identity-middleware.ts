import {
  currentInboundCall,
  currentServedCall,
  interceptClientCall,
  serverMiddleware,
} from '@switchyard/nice-grpc';
import {
  type CallContext,
  type ClientMiddleware,
  ServerError,
  type ServerMiddleware,
  Status,
} from 'nice-grpc-common';
import {
  type AuthorizationOptions,
  authorizationInterceptor,
  type IdentityHeaderOptions,
  identityHeaderInterceptor,
  type PeerIdentityOptions,
  peerIdentityInterceptor,
} from './identity.js';
import type { VerifiedPeerIdentity } from './peer-identity.js';

/** The call context extension added by {@link peerIdentityServerMiddleware}. */
export interface PeerIdentityContext {
  /** The verified caller; `undefined` when the client presented no verified certificate. */
  peerIdentity: VerifiedPeerIdentity | undefined;
}

const MISSING_INTERCEPTOR =
  'peerIdentityServerMiddleware needs the grpc-js call: create the server with ' +
  "createServer(withInboundCall()) from '@switchyard/nice-grpc'";

/**
 * Server middleware that establishes who sent each call ({@link peerIdentityInterceptor}, the
 * identity layer proxy-kit runs too) and hands it to the handler as `context.peerIdentity` and
 * to calls the handler makes through the call scope's `peer`.
 *
 * Needs the grpc-js call behind nice-grpc's: create the server with `withInboundCall()`
 * (`@switchyard/nice-grpc`, grpc-js ≥ 1.13 for `getAuthContext`).
 */
export function peerIdentityServerMiddleware(
  options: PeerIdentityOptions = {},
): ServerMiddleware<PeerIdentityContext> {
  const identify = serverMiddleware<PeerIdentityContext>(
    peerIdentityInterceptor(options),
    (served, context) => ({
      ...context,
      peerIdentity: served.peer as VerifiedPeerIdentity | undefined,
    }),
  );
  return (call, context: CallContext) => {
    if (currentInboundCall() === undefined)
      throw new ServerError(Status.INTERNAL, MISSING_INTERCEPTOR);
    return identify(call, context);
  };
}

/**
 * Server middleware that lets a call through only when the policy allows its caller
 * ({@link authorizationInterceptor}); install it after {@link peerIdentityServerMiddleware}.
 */
export function authorizationServerMiddleware(
  options: AuthorizationOptions,
): ServerMiddleware<unknown, PeerIdentityContext> {
  return serverMiddleware(authorizationInterceptor(options));
}

/** Options of {@link identityHeaderClientMiddleware}. */
export type IdentityHeaderClientOptions = IdentityHeaderOptions;

/**
 * Client middleware for proxies and gateways ({@link identityHeaderInterceptor}): names the caller
 * of the inbound call being served in the identity header of each outgoing call.
 */
export function identityHeaderClientMiddleware(
  options: IdentityHeaderClientOptions = {},
): ClientMiddleware {
  const interceptor = identityHeaderInterceptor(options);
  return (call, callOptions) => {
    // Outside an identified inbound call there is nothing to name.
    if (currentServedCall()?.peer === undefined) return call.next(call.request, callOptions);
    return interceptClientCall(call, callOptions, interceptor);
  };
}
