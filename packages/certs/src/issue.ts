import { createPublicKey, X509Certificate as NodeX509Certificate } from 'node:crypto';
import {
  generateKeyPair,
  importSigningKey,
  type KeyType,
  keyAlgorithm,
  privateKeyToPem,
  type SigningKey,
} from './keys.js';
import { type CertificateMaterial, withTrailingNewline } from './material.js';
import { x509 } from './provider.js';
import { type SubjectAltNames, subjectAltNameEntries } from './san.js';
import { randomSerialNumber } from './serial.js';
import { resolveValidity, type ValidityOptions } from './validity.js';

/** Which side of a TLS connection a certificate may authenticate (its extended key usage). */
export type CertificateUsage = 'server' | 'client' | 'both';

/** Options for {@link issueCertificate}. */
export interface CertificateOptions extends SubjectAltNames, ValidityOptions {
  /**
   * Subject common name. Defaults to the first DNS name, else the first IP
   * address, else `switchyard`. TLS peers match names against the SANs, not this.
   */
  commonName?: string;
  /** Defaults to `both`. */
  usage?: CertificateUsage;
  /** Defaults to `ec-p256`. */
  keyType?: KeyType;
}

/** A leaf certificate, its key, and the chain to present with it. */
export interface IssuedCertificate extends CertificateMaterial {
  /** The certificate followed by the issuing CA's certificate, for servers that present their chain. */
  chainPem: string;
}

/**
 * The CA to issue from: its certificate and private key in PEM. A
 * {@link CertificateAuthority} fits, and so does a CA made by another tool
 * (the key may be PKCS#8, PKCS#1 or SEC1).
 */
export interface IssuingAuthority {
  certPem: string;
  keyPem: string;
}

/** Default leaf lifetime. */
export const DEFAULT_CERTIFICATE_VALIDITY_DAYS = 365;

const USAGES: Record<CertificateUsage, string[]> = {
  server: [x509.ExtendedKeyUsage.serverAuth],
  client: [x509.ExtendedKeyUsage.clientAuth],
  both: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
};

/**
 * Issues a leaf certificate (`CA:FALSE`) signed by `ca`, with a fresh key
 * pair and a random serial number. A SPIFFE ID goes in a URI SAN, so the
 * certificate is also an X.509-SVID.
 *
 * @example
 * ```ts
 * const server = await issueCertificate(ca, {
 *   dnsNames: ['localhost'],
 *   ipAddresses: ['127.0.0.1'],
 *   usage: 'server',
 * });
 * tls.createServer({ cert: server.chainPem, key: server.keyPem });
 * ```
 */
export async function issueCertificate(
  ca: IssuingAuthority,
  options: CertificateOptions = {},
): Promise<IssuedCertificate> {
  const { usage = 'both', keyType = 'ec-p256' } = options;
  const extendedUsages = Object.hasOwn(USAGES, usage) ? USAGES[usage] : undefined;
  if (!extendedUsages) {
    throw new TypeError(`unknown usage ${JSON.stringify(usage)}; expected server, client or both`);
  }
  const algorithm = keyAlgorithm(keyType);
  const sans = subjectAltNameEntries(options);
  const commonName =
    options.commonName ?? options.dnsNames?.[0] ?? options.ipAddresses?.[0] ?? 'switchyard';
  const validity = resolveValidity(options, DEFAULT_CERTIFICATE_VALIDITY_DAYS);
  const issuer = await loadIssuer(ca);
  const keys = await generateKeyPair(keyType);
  const serialNumber = randomSerialNumber();

  const keyUsage = algorithm.rsa
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(keyUsage, true),
    new x509.ExtendedKeyUsageExtension(extendedUsages),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await authorityKeyIdentifier(issuer.cert),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: [{ CN: [commonName] }],
    issuer: issuer.cert.subjectName,
    ...validity,
    publicKey: keys.publicKey,
    signingKey: issuer.signingKey.cryptoKey,
    signingAlgorithm: issuer.signingKey.signingAlgorithm,
    extensions,
  });
  const certPem = withTrailingNewline(cert.toString('pem'));
  return {
    certPem,
    keyPem: privateKeyToPem(keys.privateKey),
    serialNumber,
    ...validity,
    chainPem: certPem + withTrailingNewline(issuer.cert.toString('pem')),
  };
}

interface Issuer {
  cert: x509.X509Certificate;
  signingKey: SigningKey;
}

// Catches the mistakes a CLI user can make with files (a leaf passed as the
// CA, a key from another pair) here, rather than as an opaque handshake
// failure later.
async function loadIssuer(ca: IssuingAuthority): Promise<Issuer> {
  const nodeCert = new NodeX509Certificate(ca.certPem);
  if (!nodeCert.ca) {
    throw new TypeError(`${nodeCert.subject} is not a CA certificate (basicConstraints CA:FALSE)`);
  }
  const signingKey = await importSigningKey(ca.keyPem);
  const certKey = nodeCert.publicKey.export({ type: 'spki', format: 'der' });
  const ownKey = createPublicKey(signingKey.key).export({ type: 'spki', format: 'der' });
  if (!certKey.equals(ownKey)) {
    throw new TypeError("the CA's private key does not belong to its certificate");
  }
  return { cert: new x509.X509Certificate(ca.certPem), signingKey };
}

// Path building in OpenSSL and Go matches the leaf's authority key ID against
// the CA's subject key ID, so copy it rather than recompute it (the CA may
// have been made by a tool that derives it differently).
async function authorityKeyIdentifier(
  caCert: x509.X509Certificate,
): Promise<x509.AuthorityKeyIdentifierExtension> {
  const subjectKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  return subjectKeyId
    ? new x509.AuthorityKeyIdentifierExtension(subjectKeyId.keyId)
    : x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey);
}
