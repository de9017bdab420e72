import { generateKeyPair, type KeyType, keyAlgorithm, privateKeyToPem } from './keys.js';
import { type CertificateMaterial, withTrailingNewline } from './material.js';
import { x509 } from './provider.js';
import { randomSerialNumber } from './serial.js';
import { resolveValidity, type ValidityOptions } from './validity.js';

/** Options for {@link createCertificateAuthority}. */
export interface CertificateAuthorityOptions extends ValidityOptions {
  /** Subject common name. Defaults to `Switchyard Development CA`. */
  commonName?: string;
  /** Defaults to `ec-p256`. */
  keyType?: KeyType;
}

/** A self-signed root CA: its certificate and the key that signs what it issues. */
export type CertificateAuthority = CertificateMaterial;

/** Default CA lifetime: long enough that a checked-in dev CA does not expire under anyone. */
export const DEFAULT_CA_VALIDITY_DAYS = 3650;

/**
 * Creates a self-signed root certificate authority (`CA:TRUE`, key usage
 * `keyCertSign` and `cRLSign`) for issuing development and test certificates.
 *
 * @example
 * ```ts
 * const ca = await createCertificateAuthority({ commonName: 'My Test CA' });
 * ```
 */
export async function createCertificateAuthority(
  options: CertificateAuthorityOptions = {},
): Promise<CertificateAuthority> {
  const { commonName = 'Switchyard Development CA', keyType = 'ec-p256' } = options;
  const validity = resolveValidity(options, DEFAULT_CA_VALIDITY_DAYS);
  const keys = await generateKeyPair(keyType);
  const serialNumber = randomSerialNumber();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber,
    name: [{ CN: [commonName] }],
    ...validity,
    keys,
    signingAlgorithm: keyAlgorithm(keyType).sign,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certPem: withTrailingNewline(cert.toString('pem')),
    keyPem: privateKeyToPem(keys.privateKey),
    serialNumber,
    ...validity,
  };
}
