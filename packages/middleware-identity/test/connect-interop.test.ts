import { Code, ConnectError } from '@connectrpc/connect';
import { type ConnectTestClient, createConnectClient } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { mtlsServerCredentials, watchCertificateFiles } from '../src/index.js';
import { createTestCa, FRONTEND, LOOPBACK_SERVER } from './pki.js';
import { type SeenIdentity, startIdentityServer } from './servers.js';

const clients: ConnectTestClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

/** Calls Unary with connect-node over TLS, presenting `client` when given. */
async function callUnary(
  address: string,
  ca: string,
  client?: { certPem: string; keyPem: string },
): Promise<SeenIdentity> {
  const connect = createConnectClient(address, { tls: { ca, ...client } });
  clients.push(connect);
  const { payload } = await connect.client.unary({});
  return JSON.parse(payload) as SeenIdentity;
}

describe('a connect-node client with a client certificate', () => {
  it('is identified by its SPIFFE ID', async () => {
    const pki = await createTestCa();
    const files = await watchCertificateFiles(await pki.files('server', LOOPBACK_SERVER));
    const address = await startIdentityServer({ credentials: mtlsServerCredentials(files) });
    const client = await pki.issue({ spiffeId: FRONTEND, usage: 'client' });
    const seen = await callUnary(address, pki.ca.certPem, client);
    expect(seen).toEqual({
      id: FRONTEND,
      source: 'spiffe',
      tlsPeer: FRONTEND,
      serialNumber: client.serialNumber,
      scopePeer: { id: FRONTEND, source: 'spiffe' },
    });
  });

  it('is refused without one', async () => {
    const pki = await createTestCa();
    const files = await watchCertificateFiles(await pki.files('server', LOOPBACK_SERVER));
    const address = await startIdentityServer({ credentials: mtlsServerCredentials(files) });
    const error = await callUnary(address, pki.ca.certPem).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    // connect-node reports the TLS alert as it received it, with code INTERNAL.
    expect((error as ConnectError).code).toBe(Code.Internal);
    expect((error as ConnectError).message).toMatch(/alert certificate required/);
  });
});
