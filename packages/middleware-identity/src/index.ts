export {
  type AuthorizationOptions,
  authorizationServerMiddleware,
  type DecisionLogger,
} from './authorization-middleware.js';
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
export { compileGlob, type Glob } from './glob.js';
export {
  type CertificateIdentity,
  certificateIdentity,
  parseSubjectAltNames,
  type SubjectAltName,
  type VerifiedPeerIdentity,
} from './peer-identity.js';
export {
  DEFAULT_IDENTITY_HEADER,
  type IdentityHeaderClientOptions,
  identityHeaderClientMiddleware,
  type PeerIdentityContext,
  type PeerIdentityOptions,
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
