import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  create,
  createFileRegistry,
  type DescMethodUnary,
  fromBinary,
  toJson,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type Transport } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { afterEach, describe, expect, it } from 'vitest';
import { mtlsServerCredentials, watchCertificateFiles } from '../src/index.js';
import { createTestCa, FRONTEND, LOOPBACK_SERVER } from './pki.js';
import { type SeenIdentity, startIdentityServer } from './servers.js';

// @switchyard/testing exports the connect-es TestService only through its cleartext client, so
// the descriptor comes from the FileDescriptorSet its build writes (as its Python peer reads it).
const DESCRIPTOR_SET = fileURLToPath(new URL('../../testing/dist/test.binpb', import.meta.url));
const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, await readFile(DESCRIPTOR_SET)),
);
const TestService = registry.getService('switchyard.testing.v1.TestService')!;
const method = TestService.methods.find((candidate) => candidate.name === 'Unary');
if (method?.methodKind !== 'unary') throw new TypeError('TestService has no unary Unary method');
const unary = method as DescMethodUnary;

const sessions: Http2SessionManager[] = [];
afterEach(() => {
  for (const session of sessions.splice(0)) session.abort();
});

/** A connect-node gRPC transport over TLS, presenting `client` when given. */
function tlsTransport(
  address: string,
  ca: string,
  client?: { certPem: string; keyPem: string },
): Transport {
  const baseUrl = `https://${address}`;
  const nodeOptions = {
    ca,
    ...(client && { cert: client.certPem, key: client.keyPem }),
    servername: 'localhost',
  };
  const sessionManager = new Http2SessionManager(baseUrl, undefined, nodeOptions);
  sessions.push(sessionManager);
  return createGrpcTransport({ baseUrl, sessionManager, nodeOptions });
}

async function callUnary(transport: Transport): Promise<SeenIdentity> {
  const response = await transport.unary(
    unary,
    undefined,
    undefined,
    undefined,
    create(unary.input, {}),
  );
  const { payload } = toJson(unary.output, response.message) as { payload: string };
  return JSON.parse(payload) as SeenIdentity;
}

describe('a connect-node client with a client certificate', () => {
  it('is identified by its SPIFFE ID', async () => {
    const pki = await createTestCa();
    const files = await watchCertificateFiles(await pki.files('server', LOOPBACK_SERVER));
    const address = await startIdentityServer({ credentials: mtlsServerCredentials(files) });
    const client = await pki.issue({ spiffeId: FRONTEND, usage: 'client' });
    const seen = await callUnary(tlsTransport(address, pki.ca.certPem, client));
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
    const error = await callUnary(tlsTransport(address, pki.ca.certPem)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    // connect-node reports the TLS alert as it received it, with code INTERNAL.
    expect((error as ConnectError).code).toBe(Code.Internal);
    expect((error as ConnectError).message).toMatch(/alert certificate required/);
  });
});
