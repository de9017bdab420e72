import {
  type AuthorizationDecisionEvent,
  authorizationDecisionChannel,
  compileGlob,
  type Interceptor,
  type PeerIdentity,
  proxyOutcome,
  Status,
} from '@switchyard/core';
import { certificateIdentity, type VerifiedPeerIdentity } from './peer-identity.js';
import { type AuthorizationPolicy, CompiledPolicy, compileAuthorizationPolicy } from './policy.js';

/** Linkerd's header for the client identity it verified. */
export const DEFAULT_IDENTITY_HEADER = 'l5d-client-id';

/** Options of {@link peerIdentityInterceptor}. */
export interface PeerIdentityOptions {
  /**
   * Identities (globs, see {@link compileGlob}) of proxies allowed to name their client in the
   * {@link identityHeader}. Nobody by default: the header is then removed from every call.
   */
  trustedProxies?: readonly string[];
  /** The header a trusted proxy names its client in. Default `l5d-client-id`. */
  identityHeader?: string;
}

/**
 * Establishes who sent each server call, once for every transport: from the client certificate
 * the TLS handshake verified (SPIFFE ID, else DNS SAN, else subject CN), as the call's `peer` —
 * a {@link VerifiedPeerIdentity}, carrying the certificate's identity too.
 *
 * A peer listed in `trustedProxies` may name the client it forwards for in the identity header
 * (as Linkerd's proxy does with `l5d-client-id`); the header then becomes the identity. From any
 * other peer the header is removed from the call — from what the handler reads and from what is
 * forwarded to the next hop — so a client cannot claim an identity by sending it. A malformed
 * header from a trusted proxy is UNAUTHENTICATED.
 */
export function peerIdentityInterceptor({
  trustedProxies = [],
  identityHeader = DEFAULT_IDENTITY_HEADER,
}: PeerIdentityOptions = {}): Interceptor {
  const trusted = trustedProxies.map(compileGlob);
  const header = identityHeader.toLowerCase();
  return (call, next) => {
    const certificate = call.transport.peerCertificate();
    const tlsPeer = certificate && certificateIdentity(certificate);
    let peer: VerifiedPeerIdentity | undefined = tlsPeer && {
      id: tlsPeer.id,
      source: tlsPeer.source,
      tlsPeer,
    };
    if (tlsPeer && trusted.some((matches) => matches(tlsPeer.id))) {
      const claimed = call.headers.getAll(header);
      if (claimed.length > 0) {
        // Repeated headers may arrive joined with ", ", and no identity holds a comma or a space.
        const [value] = claimed;
        if (claimed.length > 1 || value === undefined || !/^[^\s,]+$/.test(value)) {
          return Promise.resolve(
            proxyOutcome(Status.UNAUTHENTICATED, `malformed ${header} header`),
          );
        }
        peer = { id: value, source: 'header', tlsPeer };
      }
    } else {
      call.headers.delete(header);
      call.transport.forwardHeaders.delete(header);
    }
    return next({ ...call, peer });
  };
}

/** Options of {@link identityHeaderInterceptor}. */
export interface IdentityHeaderOptions {
  /** Default `l5d-client-id`. */
  identityHeader?: string;
}

/**
 * For proxies and gateways: names the verified caller of the inbound call (its `peer`) in the
 * identity header of each outgoing call, for a server that lists this hop in its
 * `trustedProxies`. Calls made outside an identified inbound call, and calls that set the header
 * themselves, are left alone.
 */
export function identityHeaderInterceptor({
  identityHeader = DEFAULT_IDENTITY_HEADER,
}: IdentityHeaderOptions = {}): Interceptor {
  const header = identityHeader.toLowerCase();
  return (call, next) => {
    const peer = call.inbound?.peer;
    if (peer !== undefined && !call.headers.has(header)) call.headers.set(header, peer.id);
    return next(call);
  };
}

/** Where decision logs go; `console` fits. */
export interface DecisionLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Options of {@link authorizationInterceptor}. */
export interface AuthorizationOptions {
  /** The allow rules, written in code or loaded with `loadAuthorizationPolicy`. */
  policy: AuthorizationPolicy | CompiledPolicy;
  /** Which decisions to log: `none` (default), `deny` (denials and unauthenticated calls), `all`. */
  log?: 'none' | 'deny' | 'all';
  /** Default `console`. Denials are logged with `warn`, allowed calls with `info`. */
  logger?: DecisionLogger;
}

/**
 * Lets a server call through only when a policy rule allows its caller (the `peer` an identity
 * layer established before this one) to call its method. Default deny.
 *
 * - No verified identity → UNAUTHENTICATED.
 * - Not allowed → PERMISSION_DENIED, naming the method and nothing of the policy.
 *
 * Every decision is published on core's `authorizationDecisionChannel`
 * (`switchyard:identity:authorization`) for metrics, and optionally logged.
 */
export function authorizationInterceptor({
  policy,
  log = 'none',
  logger = console,
}: AuthorizationOptions): Interceptor {
  const compiled = policy instanceof CompiledPolicy ? policy : compileAuthorizationPolicy(policy);
  return (call, next) => {
    const method = call.method.path;
    const identity = (call.peer as PeerIdentity | undefined)?.id;
    if (identity === undefined) {
      decide({ method, decision: 'unauthenticated', identity });
      if (log !== 'none') logger.warn(`authorization: unauthenticated call to ${method}`);
      return Promise.resolve(proxyOutcome(Status.UNAUTHENTICATED, 'no verified client identity'));
    }
    const rule = compiled.allowingRule(identity, method);
    if (rule === undefined) {
      decide({ method, decision: 'deny', identity });
      if (log !== 'none') logger.warn(`authorization: denied ${identity} calling ${method}`);
      return Promise.resolve(
        proxyOutcome(Status.PERMISSION_DENIED, `permission denied for ${method}`),
      );
    }
    decide({ method, decision: 'allow', identity });
    if (log === 'all')
      logger.info(`authorization: allowed ${identity} calling ${method} (${rule})`);
    return next(call);
  };
}

function decide(event: AuthorizationDecisionEvent): void {
  if (authorizationDecisionChannel.hasSubscribers) authorizationDecisionChannel.publish(event);
}
