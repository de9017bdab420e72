/** A certificate with its private key, both PEM-encoded. */
export interface CertificateMaterial {
  /** The certificate, PEM-encoded, ending in a newline. */
  certPem: string;
  /** The private key as PKCS#8 PEM, readable by node:tls, grpc-js and openssl. */
  keyPem: string;
  /** The serial number as upper-case hex, as `X509Certificate#serialNumber` reports it. */
  serialNumber: string;
  /** Start of the validity period. */
  notBefore: Date;
  /** End of the validity period. */
  notAfter: Date;
}

// @peculiar/x509 ends its PEM without a newline; files and concatenated
// chains want one.
export function withTrailingNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}
