import { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import {
  createCertificateAuthority,
  type IssuedCertificate,
  issueCertificate,
} from '@switchyard/certs';
import { ClientError, Status } from 'nice-grpc-common';
import { describe, expect, it } from 'vitest';
import {
  mtlsChannelCredentials,
  mtlsServerCredentials,
  watchCertificateFiles,
} from '../src/index.js';
import { createTestCa, FRONTEND, LOOPBACK_SERVER, type TestCa } from './pki.js';
import { connectClient, seen, startIdentityServer } from './servers.js';

const DAY = 24 * 60 * 60 * 1000;
const EXPIRED = { notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) };

const ALLOW_FRONTEND = { policy: { rules: [{ methods: ['**'], identities: [FRONTEND] }] } };

async function mtlsServer(pki: TestCa, requireClientCertificate?: boolean): Promise<string> {
  const files = await watchCertificateFiles(await pki.files('server', LOOPBACK_SERVER));
  return startIdentityServer({
    credentials: mtlsServerCredentials(files, { requireClientCertificate }),
    authorization: ALLOW_FRONTEND,
  });
}

// A client assembled without CertificateFiles, which refuses to load expired certificates.
function rawClientCredentials(ca: string, client?: IssuedCertificate): ChannelCredentials {
  return client
    ? ChannelCredentials.createSsl(
        Buffer.from(ca),
        Buffer.from(client.keyPem),
        Buffer.from(client.chainPem),
      )
    : ChannelCredentials.createSsl(Buffer.from(ca));
}

async function failure(call: Promise<unknown>): Promise<ClientError> {
  const error = await call.then(
    () => new Error('the call succeeded'),
    (e: unknown) => e,
  );
  if (!(error instanceof ClientError)) throw error;
  return error;
}

describe('client certificates, required (the default)', () => {
  it('identifies a client whose certificate chains to the CA', async () => {
    const pki = await createTestCa();
    const address = await mtlsServer(pki);
    const files = await watchCertificateFiles(
      await pki.files('frontend', { spiffeId: FRONTEND, usage: 'client' }),
    );
    const response = await connectClient(address, mtlsChannelCredentials(files)).unary({});
    expect(seen(response)).toMatchObject({ id: FRONTEND, source: 'spiffe' });
  });

  it('refuses the handshake of a client without a certificate', async () => {
    const pki = await createTestCa();
    const address = await mtlsServer(pki);
    const error = await failure(
      connectClient(address, rawClientCredentials(pki.ca.certPem)).unary({}),
    );
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(error.details).toMatch(/alert certificate required/);
  });

  it.each([
    ['from another CA', { spiffeId: FRONTEND, usage: 'client' as const }, true],
    ['expired', { spiffeId: FRONTEND, usage: 'client' as const, ...EXPIRED }, false],
  ])('refuses the handshake of a client whose certificate is %s', async (_, options, foreign) => {
    const pki = await createTestCa();
    const address = await mtlsServer(pki);
    const issuer = foreign ? await createCertificateAuthority() : pki.ca;
    const client = await issueCertificate(issuer, options);
    const error = await failure(
      connectClient(address, rawClientCredentials(pki.ca.certPem, client)).unary({}),
    );
    // node's TLS server closes the connection without an alert, so the client learns only that
    // no connection could be made; with requireClientCertificate: false it learns why (below).
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(error.details).toMatch(/No connection established/);
  });
});

describe('client certificates, optional', () => {
  it.each([
    ['no certificate', undefined],
    ['a certificate from another CA', 'foreign'],
    ['an expired certificate', 'expired'],
  ] as const)('answers UNAUTHENTICATED to a client with %s', async (_, kind) => {
    const pki = await createTestCa();
    const address = await mtlsServer(pki, false);
    const issuer = kind === 'foreign' ? await createCertificateAuthority() : pki.ca;
    const client =
      kind &&
      (await issueCertificate(issuer, {
        spiffeId: FRONTEND,
        usage: 'client',
        ...(kind === 'expired' ? EXPIRED : {}),
      }));
    const error = await failure(
      connectClient(address, rawClientCredentials(pki.ca.certPem, client)).unary({}),
    );
    expect([error.code, error.details]).toEqual([
      Status.UNAUTHENTICATED,
      'no verified client identity',
    ]);
  });
});

describe('the server as the client sees it', () => {
  it.each([
    [
      'from another CA',
      'foreign',
      /self[- ]signed certificate in certificate chain|unable to verify/,
    ],
    ['expired', 'expired', /certificate has expired/],
  ] as const)('refuses a server certificate %s', async (_, kind, message) => {
    const pki = await createTestCa();
    const issuer = kind === 'foreign' ? await createCertificateAuthority() : pki.ca;
    const serverCert = await issueCertificate(issuer, {
      ...LOOPBACK_SERVER,
      ...(kind === 'expired' ? EXPIRED : {}),
    });
    const address = await startIdentityServer({
      credentials: ServerCredentials.createSsl(
        Buffer.from(pki.ca.certPem),
        [
          {
            cert_chain: Buffer.from(serverCert.chainPem),
            private_key: Buffer.from(serverCert.keyPem),
          },
        ],
        true,
      ),
    });
    const files = await watchCertificateFiles(
      await pki.files('frontend', { spiffeId: FRONTEND, usage: 'client' }),
    );
    const error = await failure(connectClient(address, mtlsChannelCredentials(files)).unary({}));
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(error.details).toMatch(message);
  });

  it('refuses a server certificate for another name', async () => {
    const pki = await createTestCa();
    const address = await mtlsServer(pki);
    const files = await watchCertificateFiles(
      await pki.files('frontend', { spiffeId: FRONTEND, usage: 'client' }),
    );
    const client = connectClient(address, mtlsChannelCredentials(files), 'billing.test');
    const error = await failure(client.unary({}));
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(error.details).toMatch(
      /Hostname\/IP does not match certificate's altnames: Host: billing\.test\. is not in the cert's altnames: DNS:localhost/,
    );
  });
});
