// @peculiar/x509 resolves its internals through tsyringe, which needs the
// Reflect metadata API; it must be installed before @peculiar/x509 loads.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

// Node's own WebCrypto covers everything used here (ECDSA, RSASSA-PKCS1-v1_5,
// SHA-2), so no crypto polyfill is needed. Every module that uses x509
// imports it from here, so the provider is always set first.
x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
