import { X509Certificate } from 'node:crypto';
import { Status } from 'nice-grpc-common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  callTestService,
  createTestClient,
  generateTestPki,
  type RunningTestServer,
  startServer,
  TEST_CLIENT_SPIFFE_ID,
  type TestCall,
  type TestPki,
} from '../src/index.js';

const UNARY: TestCall = { method: 'Unary', requests: [{ payload: 'over tls' }] };

describe('generateTestPki', () => {
  let pki: TestPki;
  let server: RunningTestServer;
  beforeAll(async () => {
    pki = await generateTestPki();
    server = await startServer({ credentials: pki.serverCredentials() });
  });
  afterAll(() => server?.forceStop());

  it('issues a localhost server certificate and a SPIFFE client certificate from one CA', async () => {
    const ca = new X509Certificate(pki.ca.certPem);
    const serverCert = new X509Certificate(pki.server.certPem);
    const clientCert = new X509Certificate(pki.client.certPem);
    expect(serverCert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(clientCert.subjectAltName).toBe(`URI:${TEST_CLIENT_SPIFFE_ID}`);
    expect(serverCert.verify(ca.publicKey)).toBe(true);
    expect(clientCert.verify(ca.publicKey)).toBe(true);
    const extra = new X509Certificate((await pki.issue({ dnsNames: ['extra.test'] })).certPem);
    expect(extra.verify(ca.publicKey)).toBe(true);
  });

  it('serves gRPC over mutual TLS on 127.0.0.1', async () => {
    const client = createTestClient(server.address, { credentials: pki.clientCredentials() });
    try {
      const outcome = await callTestService(client.client, UNARY);
      expect(outcome.status.code).toBe(Status.OK);
      expect(outcome.responses[0]?.payload).toBe('over tls');
    } finally {
      client.close();
    }
  });

  it('refuses a client without a certificate, or with one from another CA', async () => {
    const stranger = await generateTestPki();
    for (const credentials of [
      pki.clientCredentials(null),
      // Trusts our server's CA but presents a certificate our server does not trust.
      pki.clientCredentials(stranger.client),
    ]) {
      const client = createTestClient(server.address, { credentials });
      try {
        const outcome = await callTestService(client.client, UNARY);
        expect(outcome.status.code).toBe(Status.UNAVAILABLE);
      } finally {
        client.close();
      }
    }
  });
});
