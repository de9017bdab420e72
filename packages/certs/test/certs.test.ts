import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  type IssuedCertificate,
  issueCertificate,
} from '../src/index.js';
import { x509 } from '../src/provider.js';

const SPIFFE_ID = 'spiffe://test.local/ns/default/sa/client';
const DAY_MS = 24 * 60 * 60 * 1000;

function keyUsages(certPem: string): number {
  const usage = new x509.X509Certificate(certPem).getExtension(x509.KeyUsagesExtension);
  return usage?.usages ?? 0;
}

describe('createCertificateAuthority', () => {
  it.each(['ec-p256', 'rsa-2048'] as const)('makes a self-signed %s CA', async (keyType) => {
    const ca = await createCertificateAuthority({ commonName: 'Unit Test CA', keyType });
    const cert = new X509Certificate(ca.certPem);

    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=Unit Test CA');
    expect(cert.issuer).toBe('CN=Unit Test CA');
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.serialNumber).toBe(ca.serialNumber);
    expect(cert.publicKey.asymmetricKeyType).toBe(keyType === 'rsa-2048' ? 'rsa' : 'ec');
    expect(cert.checkPrivateKey(createPrivateKey(ca.keyPem))).toBe(true);
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(keyUsages(ca.certPem)).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  });

  it('reports the validity it wrote, defaulting to ten years from a minute ago', async () => {
    const before = Date.now();
    const ca = await createCertificateAuthority();
    const cert = new X509Certificate(ca.certPem);

    expect(new Date(cert.validFrom)).toEqual(ca.notBefore);
    expect(new Date(cert.validTo)).toEqual(ca.notAfter);
    expect(ca.notBefore.getTime()).toBeLessThanOrEqual(before - 59_000);
    expect(ca.notBefore.getTime()).toBeGreaterThan(before - 120_000);
    expect(ca.notAfter.getTime() - ca.notBefore.getTime()).toBe(3650 * DAY_MS);
  });

  it('gives every CA a different serial number', async () => {
    const [a, b] = await Promise.all([createCertificateAuthority(), createCertificateAuthority()]);
    expect(a.serialNumber).toMatch(/^[0-9A-F]{32}$/);
    expect(a.serialNumber).not.toBe(b.serialNumber);
  });
});

describe('issueCertificate', () => {
  it('puts the SPIFFE ID, DNS names and IP addresses in the SAN', async () => {
    const ca = await createCertificateAuthority();
    const leaf = await issueCertificate(ca, {
      spiffeId: SPIFFE_ID,
      dnsNames: ['localhost', '*.svc.test'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    const cert = new X509Certificate(leaf.certPem);

    expect(cert.subjectAltName).toBe(
      `URI:${SPIFFE_ID}, DNS:localhost, DNS:*.svc.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1`,
    );
    expect(cert.subject).toBe('CN=localhost');
    expect(cert.ca).toBe(false);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it('is signed by its CA and by no other', async () => {
    const [ca, other] = await Promise.all([
      createCertificateAuthority(),
      createCertificateAuthority(),
    ]);
    const leaf = await issueCertificate(ca, { dnsNames: ['localhost'] });
    const cert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);

    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.issuer).toBe(caCert.subject);
    expect(cert.verify(new X509Certificate(other.certPem).publicKey)).toBe(false);
    expect(cert.serialNumber).toBe(leaf.serialNumber);
    expect(cert.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
    expect(leaf.chainPem).toBe(leaf.certPem + ca.certPem);
  });

  it.each([
    ['server', ['1.3.6.1.5.5.7.3.1']],
    ['client', ['1.3.6.1.5.5.7.3.2']],
    ['both', ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']],
  ] as const)('marks a %s certificate for that side of TLS', async (usage, oids) => {
    const ca = await createCertificateAuthority();
    const leaf = await issueCertificate(ca, { commonName: 'svc', usage });
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.keyUsage).toEqual(oids);
    expect(cert.subjectAltName).toBeUndefined();
    expect(keyUsages(leaf.certPem)).toBe(x509.KeyUsageFlags.digitalSignature);
  });

  it('issues RSA leaves from an RSA CA, with key encipherment for TLS 1.2', async () => {
    const ca = await createCertificateAuthority({ keyType: 'rsa-2048' });
    const leaf = await issueCertificate(ca, { dnsNames: ['localhost'], keyType: 'rsa-2048' });
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.publicKey.asymmetricKeyType).toBe('rsa');
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(keyUsages(leaf.certPem)).toBe(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    );
  });

  it('honours validityDays, and explicit dates even in the past', async () => {
    const ca = await createCertificateAuthority();
    const short = await issueCertificate(ca, { validityDays: 2 });
    expect(short.notAfter.getTime() - short.notBefore.getTime()).toBe(2 * DAY_MS);

    const notBefore = new Date('2020-01-01T00:00:00.750Z');
    const notAfter = new Date('2020-01-02T00:00:00Z');
    const expired = await issueCertificate(ca, { notBefore, notAfter });
    const cert = new X509Certificate(expired.certPem);
    expect(expired.notBefore).toEqual(new Date('2020-01-01T00:00:00Z'));
    expect(new Date(cert.validFrom)).toEqual(expired.notBefore);
    expect(new Date(cert.validTo)).toEqual(notAfter);
  });

  it('accepts a CA key saved in another PEM flavour (SEC1)', async () => {
    const ca = await createCertificateAuthority();
    const sec1 = createPrivateKey(ca.keyPem).export({ type: 'sec1', format: 'pem' }) as string;
    expect(sec1).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    const leaf = await issueCertificate({ certPem: ca.certPem, keyPem: sec1 });
    const caCert = new X509Certificate(ca.certPem);
    expect(new X509Certificate(leaf.certPem).verify(caCert.publicKey)).toBe(true);
  });

  it('rejects bad input with a message naming the problem', async () => {
    const [ca, other] = await Promise.all([
      createCertificateAuthority(),
      createCertificateAuthority(),
    ]);
    const leaf = await issueCertificate(ca);
    await expect(issueCertificate(ca, { spiffeId: 'spiffe://Test/x' })).rejects.toThrow(
      /invalid SPIFFE ID/,
    );
    await expect(issueCertificate(ca, { spiffeId: 'spiffe://test/a/../b' })).rejects.toThrow(
      /'\.\.' path segments/,
    );
    await expect(issueCertificate(ca, { ipAddresses: ['localhost'] })).rejects.toThrow(
      /invalid IP address/,
    );
    await expect(issueCertificate(ca, { dnsNames: ['a b'] })).rejects.toThrow(/invalid DNS name/);
    await expect(
      issueCertificate(ca, { validityDays: 1, notAfter: new Date(Date.now() + DAY_MS) }),
    ).rejects.toThrow(/not both/);
    await expect(issueCertificate(ca, { notAfter: new Date(0) })).rejects.toThrow(
      /must be later than notBefore/,
    );
    await expect(issueCertificate({ certPem: ca.certPem, keyPem: other.keyPem })).rejects.toThrow(
      /does not belong/,
    );
    await expect(issueCertificate(leaf)).rejects.toThrow(/not a CA certificate/);
  });
});

interface Side {
  ok: boolean;
  /** Why this side refused the other, as an OpenSSL verification code or error code. */
  reason?: string | undefined;
  peer?: X509Certificate | undefined;
}

/**
 * One TLS connection on 127.0.0.1 with client certificates required: each
 * side reports whether it accepted the other and what it saw of it.
 */
async function handshake(
  serverOptions: tls.TlsOptions,
  clientOptions: tls.ConnectionOptions,
): Promise<{ server: Side; client: Side }> {
  // With rejectUnauthorized the server would drop a refused client silently;
  // checking `authorized` ourselves makes the same decision and keeps the reason.
  const server = tls.createServer({
    ...serverOptions,
    requestCert: true,
    rejectUnauthorized: false,
  });
  const serverSide = new Promise<Side>((resolve) => {
    server.once('secureConnection', (socket) => {
      const peer = socket.getPeerX509Certificate();
      if (socket.authorized) {
        resolve({ ok: true, peer });
        socket.end('hello');
      } else {
        resolve({ ok: false, reason: String(socket.authorizationError), peer });
        socket.destroy();
      }
    });
    server.once('tlsClientError', (error: NodeJS.ErrnoException) =>
      resolve({ ok: false, reason: error.code }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const socket = tls.connect({ host: '127.0.0.1', port, ...clientOptions });
  try {
    const clientSide = new Promise<Side>((resolve) => {
      let received = '';
      let peer: X509Certificate | undefined;
      socket.setEncoding('utf8');
      socket.on('secureConnect', () => {
        peer = socket.getPeerX509Certificate();
      });
      socket.on('data', (chunk: string) => {
        received += chunk;
      });
      socket.on('error', (error: NodeJS.ErrnoException) =>
        resolve({ ok: false, reason: error.code }),
      );
      // Under TLS 1.3 a client learns that the server refused its certificate
      // only after its own handshake finished, so success means the server's
      // greeting arrived, not merely 'secureConnect'.
      socket.on('close', () => resolve({ ok: received === 'hello', peer }));
    });
    const [serverResult, clientResult] = await Promise.all([serverSide, clientSide]);
    return { server: serverResult, client: clientResult };
  } finally {
    socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('mutual TLS with the generated certificates', () => {
  async function pki(): Promise<{
    ca: CertificateAuthority;
    server: IssuedCertificate;
    client: IssuedCertificate;
  }> {
    const ca = await createCertificateAuthority();
    const [server, client] = await Promise.all([
      issueCertificate(ca, {
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
        usage: 'server',
      }),
      issueCertificate(ca, { spiffeId: SPIFFE_ID, usage: 'client' }),
    ]);
    return { ca, server, client };
  }

  it('completes a handshake in which each side verifies the other', async () => {
    const { ca, server, client } = await pki();
    const result = await handshake(
      { cert: server.chainPem, key: server.keyPem, ca: ca.certPem },
      { cert: client.certPem, key: client.keyPem, ca: ca.certPem, servername: 'localhost' },
    );
    expect(result.server).toMatchObject({ ok: true });
    expect(result.client).toMatchObject({ ok: true });
    expect(result.server.peer?.subjectAltName).toBe(`URI:${SPIFFE_ID}`);
    expect(result.client.peer?.serialNumber).toBe(server.serialNumber);
  });

  it('verifies the server by its IP address SAN when no server name is sent', async () => {
    const { ca, server, client } = await pki();
    const result = await handshake(
      { cert: server.certPem, key: server.keyPem, ca: ca.certPem },
      { cert: client.certPem, key: client.keyPem, ca: ca.certPem },
    );
    expect(result.client).toMatchObject({ ok: true });
  });

  it('rejects a client certificate from another CA', async () => {
    const { ca, server } = await pki();
    const stranger = await issueCertificate(await createCertificateAuthority(), {
      spiffeId: SPIFFE_ID,
      usage: 'client',
    });
    const result = await handshake(
      { cert: server.certPem, key: server.keyPem, ca: ca.certPem },
      { cert: stranger.certPem, key: stranger.keyPem, ca: ca.certPem, servername: 'localhost' },
    );
    expect(result.server).toMatchObject({ ok: false, reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    expect(result.client.ok).toBe(false);
  });

  it('rejects a server certificate from another CA', async () => {
    const { ca, client } = await pki();
    const stranger = await issueCertificate(await createCertificateAuthority(), {
      dnsNames: ['localhost'],
      usage: 'server',
    });
    const result = await handshake(
      { cert: stranger.certPem, key: stranger.keyPem, ca: ca.certPem },
      { cert: client.certPem, key: client.keyPem, ca: ca.certPem, servername: 'localhost' },
    );
    expect(result.client).toMatchObject({ ok: false, reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('rejects a client-only certificate presented by a server', async () => {
    const { ca, client } = await pki();
    const result = await handshake(
      { cert: client.certPem, key: client.keyPem, ca: ca.certPem },
      { cert: client.certPem, key: client.keyPem, ca: ca.certPem, servername: 'localhost' },
    );
    // OpenSSL's verdict on a server certificate without the serverAuth EKU.
    expect(result.client).toMatchObject({ ok: false, reason: 'INVALID_PURPOSE' });
  });
});
