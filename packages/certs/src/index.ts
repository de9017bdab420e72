export {
  type CertificateAuthority,
  type CertificateAuthorityOptions,
  createCertificateAuthority,
  DEFAULT_CA_VALIDITY_DAYS,
} from './authority.js';
export { CERTS_USAGE, type CliOutput, CliUsageError, runCertsCli } from './cli.js';
export {
  type CertificateOptions,
  type CertificateUsage,
  DEFAULT_CERTIFICATE_VALIDITY_DAYS,
  type IssuedCertificate,
  type IssuingAuthority,
  issueCertificate,
} from './issue.js';
export type { KeyType } from './keys.js';
export type { CertificateMaterial } from './material.js';
export { assertSpiffeId, type SubjectAltNames } from './san.js';
export type { ValidityOptions } from './validity.js';
