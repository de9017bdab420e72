import { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import {
  type CertificateAuthority,
  type CertificateOptions,
  createCertificateAuthority,
  type IssuedCertificate,
  issueCertificate,
} from '@switchyard/certs';

/** The SPIFFE ID in {@link TestPki.client}'s certificate. */
export const TEST_CLIENT_SPIFFE_ID = 'spiffe://test.local/ns/default/sa/client';

/** A throwaway PKI for TLS and mTLS tests. */
export interface TestPki {
  ca: CertificateAuthority;
  /** Server certificate for `localhost` and `127.0.0.1`. */
  server: IssuedCertificate;
  /** Client certificate with the SPIFFE ID {@link TEST_CLIENT_SPIFFE_ID}. */
  client: IssuedCertificate;
  /** Issues another certificate from the same CA. */
  issue(options: CertificateOptions): Promise<IssuedCertificate>;
  /** grpc-js server credentials presenting `server`, requiring client certificates unless told not to. */
  serverCredentials(options?: { requireClientCert?: boolean }): ServerCredentials;
  /** grpc-js channel credentials trusting the CA and presenting `certificate` (default `client`; `null` for none). */
  clientCredentials(certificate?: IssuedCertificate | null): ChannelCredentials;
}

/** Creates a CA with one server and one client certificate. */
export async function generateTestPki(): Promise<TestPki> {
  const ca = await createCertificateAuthority({ commonName: 'Switchyard Test CA' });
  const issue = (options: CertificateOptions) => issueCertificate(ca, options);
  const [server, client] = await Promise.all([
    issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server' }),
    issue({ spiffeId: TEST_CLIENT_SPIFFE_ID, usage: 'client' }),
  ]);
  const caCert = Buffer.from(ca.certPem);
  return {
    ca,
    server,
    client,
    issue,
    serverCredentials: ({ requireClientCert = true } = {}) =>
      ServerCredentials.createSsl(
        caCert,
        [{ cert_chain: Buffer.from(server.chainPem), private_key: Buffer.from(server.keyPem) }],
        requireClientCert,
      ),
    clientCredentials: (certificate = client) =>
      certificate
        ? ChannelCredentials.createSsl(
            caCert,
            Buffer.from(certificate.keyPem),
            Buffer.from(certificate.chainPem),
          )
        : ChannelCredentials.createSsl(caCert),
  };
}
