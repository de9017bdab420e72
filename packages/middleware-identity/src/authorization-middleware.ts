import {
  type AuthorizationDecisionEvent,
  authorizationDecisionChannel,
  Status,
} from '@switchyard/core';
import {
  type CallContext,
  ServerError,
  type ServerMiddleware,
  type ServerMiddlewareCall,
} from 'nice-grpc-common';
import type { PeerIdentityContext } from './peer-identity-middleware.js';
import { type AuthorizationPolicy, CompiledPolicy, compileAuthorizationPolicy } from './policy.js';

/** Where decision logs go; `console` fits. */
export interface DecisionLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Options of {@link authorizationServerMiddleware}. */
export interface AuthorizationOptions {
  /** The allow rules, written in code or loaded with `loadAuthorizationPolicy`. */
  policy: AuthorizationPolicy | CompiledPolicy;
  /** Which decisions to log: `none` (default), `deny` (denials and unauthenticated calls), `all`. */
  log?: 'none' | 'deny' | 'all';
  /** Default `console`. Denials are logged with `warn`, allowed calls with `info`. */
  logger?: DecisionLogger;
}

/**
 * Server middleware that lets a call through only when a policy rule allows its caller (the
 * `peerIdentity` from {@link peerIdentityServerMiddleware}, installed before this one) to call its
 * method. Default deny.
 *
 * - No verified identity → UNAUTHENTICATED.
 * - Not allowed → PERMISSION_DENIED, naming the method and nothing of the policy.
 *
 * Every decision is published on core's `authorizationDecisionChannel`
 * (`switchyard:identity:authorization`) for metrics, and optionally logged.
 */
export function authorizationServerMiddleware({
  policy,
  log = 'none',
  logger = console,
}: AuthorizationOptions): ServerMiddleware<unknown, PeerIdentityContext> {
  const compiled = policy instanceof CompiledPolicy ? policy : compileAuthorizationPolicy(policy);
  return async function* authorize<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, PeerIdentityContext>,
    context: CallContext & PeerIdentityContext,
  ) {
    const method = call.method.path;
    const identity = context.peerIdentity?.id;
    if (identity === undefined) {
      decide({ method, decision: 'unauthenticated', identity });
      if (log !== 'none') logger.warn(`authorization: unauthenticated call to ${method}`);
      throw new ServerError(Status.UNAUTHENTICATED, 'no verified client identity');
    }
    const rule = compiled.allowingRule(identity, method);
    if (rule === undefined) {
      decide({ method, decision: 'deny', identity });
      if (log !== 'none') logger.warn(`authorization: denied ${identity} calling ${method}`);
      throw new ServerError(Status.PERMISSION_DENIED, `permission denied for ${method}`);
    }
    decide({ method, decision: 'allow', identity });
    if (log === 'all')
      logger.info(`authorization: allowed ${identity} calling ${method} (${rule})`);
    return yield* call.next(call.request, context);
  };
}

function decide(event: AuthorizationDecisionEvent): void {
  if (authorizationDecisionChannel.hasSubscribers) authorizationDecisionChannel.publish(event);
}
