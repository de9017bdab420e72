import { createPrivateKey, KeyObject, webcrypto } from 'node:crypto';

/** Key algorithms a generated key pair can use. */
export type KeyType = 'ec-p256' | 'rsa-2048';

/** The WebCrypto algorithms that belong to one key: how to make it and how it signs. */
export interface KeyAlgorithm {
  readonly generate: webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams;
  readonly sign: webcrypto.EcdsaParams | webcrypto.Algorithm;
  /** RSA keys also encrypt the TLS 1.2 RSA key exchange; EC keys never do. */
  readonly rsa: boolean;
}

const SHA256 = 'SHA-256';

const KEY_ALGORITHMS: Record<KeyType, KeyAlgorithm> = {
  'ec-p256': {
    generate: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: SHA256 },
    rsa: false,
  },
  'rsa-2048': {
    generate: {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: SHA256,
    },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
    rsa: true,
  },
};

// Curves a CA key loaded from PEM may use, with the hash conventionally paired
// with each (RFC 5480), so a CA made by another tool (openssl, cfssl) works too.
const EC_CURVES: Record<string, { namedCurve: string; hash: string }> = {
  prime256v1: { namedCurve: 'P-256', hash: SHA256 },
  secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
  secp521r1: { namedCurve: 'P-521', hash: 'SHA-512' },
};

/** A new extractable key pair of the given type. */
export async function generateKeyPair(keyType: KeyType): Promise<webcrypto.CryptoKeyPair> {
  const algorithm = keyAlgorithm(keyType);
  return (await webcrypto.subtle.generateKey(algorithm.generate, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
}

/** The algorithms for `keyType`, rejecting names outside {@link KeyType} (they may come from a CLI). */
export function keyAlgorithm(keyType: KeyType): KeyAlgorithm {
  const algorithm = Object.hasOwn(KEY_ALGORITHMS, keyType) ? KEY_ALGORITHMS[keyType] : undefined;
  if (!algorithm) {
    throw new TypeError(
      `unknown key type ${JSON.stringify(keyType)}; expected one of ${Object.keys(KEY_ALGORITHMS).join(', ')}`,
    );
  }
  return algorithm;
}

/** PKCS#8 PEM, the form node:tls, grpc-js and openssl all read. */
export function privateKeyToPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** A private key loaded from PEM (PKCS#8, PKCS#1 or SEC1), ready to sign certificates. */
export interface SigningKey {
  readonly key: KeyObject;
  readonly cryptoKey: webcrypto.CryptoKey;
  readonly signingAlgorithm: webcrypto.EcdsaParams | webcrypto.Algorithm;
}

/** Imports a CA's private key for signing, whatever PEM flavour it was saved in. */
export async function importSigningKey(keyPem: string): Promise<SigningKey> {
  const key = createPrivateKey(keyPem);
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    const cryptoKey = await webcrypto.subtle.importKey(
      'pkcs8',
      pkcs8,
      { name: 'RSASSA-PKCS1-v1_5', hash: SHA256 },
      false,
      ['sign'],
    );
    return { key, cryptoKey, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } };
  }
  const curve = type === 'ec' ? EC_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''] : undefined;
  if (!curve) {
    const detail = key.asymmetricKeyDetails?.namedCurve ?? '';
    throw new TypeError(
      `unsupported CA key type ${type}${detail ? ` (${detail})` : ''}; use an RSA or ECDSA P-256/P-384/P-521 key`,
    );
  }
  const cryptoKey = await webcrypto.subtle.importKey(
    'pkcs8',
    pkcs8,
    { name: 'ECDSA', namedCurve: curve.namedCurve },
    false,
    ['sign'],
  );
  return { key, cryptoKey, signingAlgorithm: { name: 'ECDSA', hash: curve.hash } };
}
