export { compileGlob, type Glob } from '@switchyard/core';
export {
  CertificateFileError,
  CertificateFiles,
  type CertificateFilesOptions,
  type LoadedCertificate,
  watchCertificateFiles,
} from './certificate-files.js';
export {
  type MtlsChannelOptions,
  type MtlsServerOptions,
  mtlsChannelCredentials,
  mtlsServerCredentials,
} from './credentials.js';
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
  authorizationServerMiddleware,
  type IdentityHeaderClientOptions,
  identityHeaderClientMiddleware,
  type PeerIdentityContext,
  peerIdentityServerMiddleware,
} from './peer-identity-middleware.js';
export {
  type AuthorizationPolicy,
  type AuthorizationRule,
  CompiledPolicy,
  compileAuthorizationPolicy,
  loadAuthorizationPolicy,
  PolicyConfigError,
  parseAuthorizationPolicy,
} from './policy.js';
