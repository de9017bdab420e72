import { checkServerIdentity as checkServerName } from 'node:tls';
import {
  type ChannelCredentials,
  experimental,
  type ServerCredentials,
  type VerifyOptions,
} from '@grpc/grpc-js';
import type { CertificateFiles } from './certificate-files.js';

/** Options of {@link mtlsServerCredentials}. */
export interface MtlsServerOptions {
  /**
   * Refuse the TLS handshake of clients without a certificate from the CA bundle. Default `true`.
   * With `false` they connect, carry no `peerIdentity`, and the authorization middleware answers
   * their calls with UNAUTHENTICATED.
   */
  requireClientCertificate?: boolean;
}

/**
 * grpc-js server credentials that present `files`' certificate, verify clients against its CA
 * bundle, and follow the files as they change (see {@link CertificateFiles}):
 * `server.listen(address, mtlsServerCredentials(files))`.
 */
export function mtlsServerCredentials(
  files: CertificateFiles,
  { requireClientCertificate = true }: MtlsServerOptions = {},
): ServerCredentials {
  if (!files.hasIdentity || !files.hasCa) {
    throw new TypeError('mTLS server credentials need caFile, certFile and keyFile');
  }
  // grpc-js 1.14 declares this function's parameters as (ca, identity) but hands them to a
  // constructor taking (identity, ca); one provider serving both keeps us clear of the mix-up.
  return experimental.createCertificateProviderServerCredentials(
    files,
    files,
    requireClientCertificate,
  );
}

/** Options of {@link mtlsChannelCredentials}. */
export interface MtlsChannelOptions {
  /**
   * Extra checks on the server's certificate once its chain and name have been verified; return an
   * `Error` to refuse it. To verify a name other than the target's, set the channel option
   * `grpc.ssl_target_name_override` instead.
   */
  checkServerIdentity?: VerifyOptions['checkServerIdentity'];
}

/**
 * grpc-js channel credentials that verify servers against `files`' CA bundle and, when `files`
 * has a certificate and key, present them as the client certificate; new connections use
 * whatever the files hold at the time: `createChannel(address, mtlsChannelCredentials(files))`.
 */
export function mtlsChannelCredentials(
  files: CertificateFiles,
  { checkServerIdentity }: MtlsChannelOptions = {},
): ChannelCredentials {
  if (!files.hasCa) throw new TypeError('TLS channel credentials need caFile');
  // node:tls takes checkServerIdentity as a replacement for its name check, not an addition.
  const verifyOptions: VerifyOptions = checkServerIdentity
    ? {
        checkServerIdentity: (host, cert) =>
          checkServerName(host, cert) ?? checkServerIdentity(host, cert),
      }
    : {};
  return experimental.createCertificateProviderChannelCredentials(
    files,
    files.hasIdentity ? files : null,
    verifyOptions,
  );
}
