import { Status } from '@switchyard/core';
import { staticDiscovery } from '@switchyard/discovery';
import { createTestClient, generateTestPki, startServer, type TestPki } from '@switchyard/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { startProxy } from '../src/index.js';

// TLS on both sides, with certificates made for the test: clients connect with ALPN h2, and the
// proxy reaches upstreams over TLS (mutual, when the upstream asks for a client certificate).

let pki: TestPki;

beforeAll(async () => {
  pki = await generateTestPki();
});

describe('TLS', () => {
  it('serves clients over TLS and calls an mTLS upstream with its own client certificate', async () => {
    const backend = await startServer({
      credentials: pki.serverCredentials({ requireClientCert: true }),
    });
    const proxy = await startProxy({
      listen: {
        address: '127.0.0.1:0',
        tls: { cert: pki.server.chainPem, key: pki.server.keyPem },
      },
      discovery: staticDiscovery([backend.address]),
      upstream: {
        tls: { ca: pki.ca.certPem, cert: pki.client.chainPem, key: pki.client.keyPem },
      },
    });
    const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`, {
      credentials: pki.clientCredentials(null),
    });
    try {
      expect(await client.unary({ payload: 'secure' })).toMatchObject({ payload: 'secure' });
      let count = 0;
      for await (const _ of client.serverStream({ responseCount: 3 })) count++;
      expect(count).toBe(3);
    } finally {
      close();
      await proxy.close(500);
      await backend.stop();
    }
  });

  it('refuses an upstream whose certificate it does not trust, with a clear UNAVAILABLE', async () => {
    const other = await generateTestPki();
    const backend = await startServer({
      credentials: other.serverCredentials({ requireClientCert: false }),
    });
    const proxy = await startProxy({
      listen: '127.0.0.1:0',
      discovery: staticDiscovery([backend.address]),
      upstream: { tls: { ca: pki.ca.certPem } },
      admission: { failfastMs: 300 },
    });
    const { client, close } = createTestClient(`127.0.0.1:${proxy.address.port}`);
    try {
      await expect(client.unary({})).rejects.toMatchObject({
        code: Status.UNAVAILABLE,
        details: expect.stringMatching(/certificate/),
      });
    } finally {
      close();
      await proxy.close(500);
      await backend.stop();
    }
  });
});
