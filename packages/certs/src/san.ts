import { isIP } from 'node:net';
import type { x509 } from './provider.js';

/** The names a leaf certificate is issued for. */
export interface SubjectAltNames {
  /** A SPIFFE ID, such as `spiffe://example.org/ns/default/sa/web`, placed in a URI SAN. */
  spiffeId?: string;
  /** DNS names; wildcards such as `*.example.test` are allowed. */
  dnsNames?: readonly string[];
  /** IPv4 or IPv6 addresses. */
  ipAddresses?: readonly string[];
}

// The SPIFFE ID grammar from the SPIFFE-ID specification: a lower-case trust
// domain, then path segments of letters, digits, '.', '-' and '_'; no port,
// user info, query or fragment.
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** Checks a SPIFFE ID against the specification's grammar, throwing a `TypeError` naming the problem. */
export function assertSpiffeId(spiffeId: string): void {
  if (!SPIFFE_ID.test(spiffeId)) {
    throw new TypeError(
      `invalid SPIFFE ID ${JSON.stringify(spiffeId)}: expected spiffe://<trust-domain>/<path> with a lower-case trust domain and segments of [A-Za-z0-9._-]`,
    );
  }
  const segments = spiffeId.slice('spiffe://'.length).split('/').slice(1);
  if (segments.some((segment) => segment === '.' || segment === '..')) {
    throw new TypeError(
      `invalid SPIFFE ID ${JSON.stringify(spiffeId)}: '.' and '..' path segments are not allowed`,
    );
  }
}

/** Validates the names and turns them into SAN entries, SPIFFE ID first. */
export function subjectAltNameEntries(names: SubjectAltNames): x509.JsonGeneralName[] {
  const entries: x509.JsonGeneralName[] = [];
  if (names.spiffeId !== undefined) {
    assertSpiffeId(names.spiffeId);
    entries.push({ type: 'url', value: names.spiffeId });
  }
  for (const dnsName of names.dnsNames ?? []) {
    if (!/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$/.test(dnsName)) {
      throw new TypeError(`invalid DNS name ${JSON.stringify(dnsName)}`);
    }
    entries.push({ type: 'dns', value: dnsName });
  }
  for (const ipAddress of names.ipAddresses ?? []) {
    if (isIP(ipAddress) === 0) {
      throw new TypeError(`invalid IP address ${JSON.stringify(ipAddress)}`);
    }
    entries.push({ type: 'ip', value: ipAddress });
  }
  return entries;
}
