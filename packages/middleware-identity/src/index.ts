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
export * from './interceptors.js';
export {
  authorizationServerMiddleware,
  type IdentityHeaderClientOptions,
  identityHeaderClientMiddleware,
  type PeerIdentityContext,
  peerIdentityServerMiddleware,
} from './peer-identity-middleware.js';
