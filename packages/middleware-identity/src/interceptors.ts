/**
 * What runs on any transport — peer identity, the identity header, authorization policies — as
 * core interceptors, without grpc-js: proxy-kit imports this entry, so a proxy that terminates
 * TLS itself does not load a gRPC library it never uses.
 */
export {
  type AuthorizationOptions,
  authorizationInterceptor,
  DEFAULT_IDENTITY_HEADER,
  type DecisionLogger,
  type IdentityHeaderOptions,
  identityHeaderInterceptor,
  type PeerIdentityOptions,
  peerIdentityInterceptor,
} from './identity.js';
export {
  type CertificateIdentity,
  certificateIdentity,
  parseSubjectAltNames,
  type SubjectAltName,
  type VerifiedPeerIdentity,
} from './peer-identity.js';
export {
  type AuthorizationPolicy,
  type AuthorizationRule,
  CompiledPolicy,
  compileAuthorizationPolicy,
  loadAuthorizationPolicy,
  PolicyConfigError,
  parseAuthorizationPolicy,
} from './policy.js';
