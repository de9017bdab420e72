import type { PeerCertificate } from 'node:tls';
import type { PeerIdentity } from '@switchyard/core';

/** The names in a verified certificate, and which one identifies its holder. */
export interface CertificateIdentity extends PeerIdentity {
  readonly source: 'spiffe' | 'dns' | 'cn';
  /** The SPIFFE ID (the certificate's only `spiffe://` URI SAN), if it has one. */
  readonly spiffeId: string | undefined;
  /** Every DNS SAN, in certificate order. */
  readonly dnsNames: readonly string[];
  /** Every URI SAN, SPIFFE or not, in certificate order. */
  readonly uris: readonly string[];
  /** The subject common name, if there is exactly one. */
  readonly commonName: string | undefined;
  /** Upper-case hex, as node:tls reports it. */
  readonly serialNumber: string;
  /** The certificate itself, as the TLS handshake verified it. */
  readonly certificate: PeerCertificate;
}

/**
 * Who sent an inbound call: the identity handlers and middleware read from
 * `context.peerIdentity`.
 *
 * Usually the client's own certificate (`source` `spiffe`, `dns` or `cn`). When a trusted proxy
 * vouches for its client through the identity header, `source` is `header`, `id` is the
 * header's value, and {@link tlsPeer} is the proxy.
 */
export interface VerifiedPeerIdentity extends PeerIdentity {
  /** The peer that completed the mTLS handshake: the caller itself, or the proxy in front of it. */
  readonly tlsPeer: CertificateIdentity;
}

/**
 * The identity a verified certificate proves, in the order SPIFFE and service meshes use: the
 * SPIFFE ID, else the first DNS SAN, else the subject common name; `undefined` when it has none.
 *
 * A certificate with more than one `spiffe://` URI is not a valid X.509-SVID (SPIFFE X509-SVID
 * §2), so, as grpc-go's `SPIFFEIDFromCert` does, its SPIFFE URIs are ignored rather than one
 * picked.
 */
export function certificateIdentity(certificate: PeerCertificate): CertificateIdentity | undefined {
  const names = parseSubjectAltNames(certificate.subjectaltname ?? '');
  const uris = names.filter((name) => name.type === 'URI').map((name) => name.value);
  const dnsNames = names.filter((name) => name.type === 'DNS').map((name) => name.value);
  const spiffeIds = uris.filter(isSpiffeId);
  const spiffeId = spiffeIds.length === 1 ? spiffeIds[0] : undefined;
  // node:tls gives an array when the subject repeats CN; which one is meant is then unknowable.
  const cn: unknown = certificate.subject?.CN;
  const commonName = typeof cn === 'string' && cn !== '' ? cn : undefined;
  const common = {
    spiffeId,
    dnsNames,
    uris,
    commonName,
    serialNumber: certificate.serialNumber,
    certificate,
  };
  if (spiffeId !== undefined) return { id: spiffeId, source: 'spiffe', ...common };
  if (dnsNames[0] !== undefined) return { id: dnsNames[0], source: 'dns', ...common };
  if (commonName !== undefined) return { id: commonName, source: 'cn', ...common };
  return undefined;
}

/** One entry of a certificate's subject alternative names, e.g. `{ type: 'DNS', value: 'a.test' }`. */
export interface SubjectAltName {
  readonly type: string;
  readonly value: string;
}

/**
 * Parses node's `subjectaltname` string: entries joined by `", "`, each `TYPE:value`. Since the
 * fix for CVE-2021-44532, node writes a value holding a comma, quote or other special character
 * as a JSON string (`URI:"spiffe://a/b\u002cc"`), so a crafted name cannot pose as two entries.
 */
export function parseSubjectAltNames(text: string): SubjectAltName[] {
  const names: SubjectAltName[] = [];
  let at = 0;
  while (at < text.length) {
    const colon = text.indexOf(':', at);
    if (colon < 0) throw new SyntaxError(`malformed subjectaltname ${JSON.stringify(text)}`);
    const type = text.slice(at, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = closingQuote(text, colon + 2) + 1;
      value = JSON.parse(text.slice(colon + 1, end)) as string;
    } else {
      end = text.indexOf(', ', colon + 1);
      if (end < 0) end = text.length;
      value = text.slice(colon + 1, end);
    }
    names.push({ type, value });
    if (end < text.length && !text.startsWith(', ', end)) {
      throw new SyntaxError(`malformed subjectaltname ${JSON.stringify(text)}`);
    }
    at = end + 2;
  }
  return names;
}

function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  throw new SyntaxError(`unterminated quoted name in subjectaltname ${JSON.stringify(text)}`);
}

function isSpiffeId(uri: string): boolean {
  // A trust domain is required; the SPIFFE ID grammar itself is the issuing CA's business.
  return /^spiffe:\/\/[^/]+/.test(uri);
}
