import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CertificateAuthority,
  type CertificateOptions,
  createCertificateAuthority,
  type IssuedCertificate,
  issueCertificate,
} from '@switchyard/certs';
import { afterEach } from 'vitest';

export const FRONTEND = 'spiffe://test.local/ns/shop/sa/frontend';
export const BILLING = 'spiffe://test.local/ns/shop/sa/billing';

/** Paths of one certificate's files, as the credential helpers take them. */
export interface CertificatePaths {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** A CA and a temporary directory to write certificates it issues into. */
export interface TestCa {
  ca: CertificateAuthority;
  dir: string;
  issue(options: CertificateOptions): Promise<IssuedCertificate>;
  /** Issues a certificate and writes it (chain), its key and the CA as `<name>.pem`, `<name>-key.pem`, `ca.pem`. */
  files(name: string, options: CertificateOptions): Promise<CertificatePaths & IssuedCertificate>;
  /** Writes `certificate` over `<name>.pem` and `<name>-key.pem`. */
  write(name: string, certificate: IssuedCertificate): Promise<CertificatePaths>;
}

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A fresh CA whose files live in a temporary directory removed after the test. */
export async function createTestCa(commonName = 'Identity Test CA'): Promise<TestCa> {
  const ca = await createCertificateAuthority({ commonName });
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-identity-'));
  dirs.push(dir);
  await writeFile(join(dir, 'ca.pem'), ca.certPem);
  const issue = (options: CertificateOptions) => issueCertificate(ca, options);
  const write = async (name: string, certificate: IssuedCertificate) => {
    const paths = {
      caFile: join(dir, 'ca.pem'),
      certFile: join(dir, `${name}.pem`),
      keyFile: join(dir, `${name}-key.pem`),
    };
    await writeFile(paths.certFile, certificate.chainPem);
    await writeFile(paths.keyFile, certificate.keyPem);
    return paths;
  };
  return {
    ca,
    dir,
    issue,
    write,
    async files(name, options) {
      const certificate = await issue(options);
      return { ...certificate, ...(await write(name, certificate)) };
    },
  };
}

/** Options for a server certificate valid for 127.0.0.1. */
export const LOOPBACK_SERVER: CertificateOptions = {
  dnsNames: ['localhost'],
  ipAddresses: ['127.0.0.1'],
  usage: 'server',
};
