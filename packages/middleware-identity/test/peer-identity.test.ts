import type { PeerCertificate } from 'node:tls';
import type { PeerIdentity } from '@switchyard/core';
import { currentCallScope } from '@switchyard/nice-grpc';
import {
  createTestServiceImpl,
  TestResponse,
  TestServiceDefinition,
  type TestServiceImplementation,
} from '@switchyard/testing';
import { type Channel, createChannel, createClientFactory, Metadata } from 'nice-grpc';
import type { ClientMiddleware } from 'nice-grpc-common';
import { ClientError, Status } from 'nice-grpc-common';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type CertificateFiles,
  certificateIdentity,
  identityHeaderClientMiddleware,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  type PeerIdentityContext,
  parseSubjectAltNames,
  watchCertificateFiles,
} from '../src/index.js';
import { createTestCa, FRONTEND, LOOPBACK_SERVER, type TestCa } from './pki.js';
import { connectClient, type SeenIdentity, seen, startIdentityServer } from './servers.js';

const GATEWAY = 'spiffe://test.local/ns/mesh/sa/gateway';
const ADMIN = 'spiffe://test.local/ns/ops/sa/admin';

async function filesFor(pki: TestCa, name: string, spiffeId: string): Promise<CertificateFiles> {
  return watchCertificateFiles(await pki.files(name, { spiffeId, usage: 'both' }));
}

async function serverFiles(pki: TestCa): Promise<CertificateFiles> {
  return watchCertificateFiles(await pki.files('server', LOOPBACK_SERVER));
}

describe('identity from the verified client certificate', () => {
  it.each([
    [
      'the SPIFFE ID first',
      { spiffeId: FRONTEND, dnsNames: ['web.test'], commonName: 'web' },
      FRONTEND,
      'spiffe',
    ],
    [
      'else the first DNS name',
      { dnsNames: ['web.test', 'www.test'], commonName: 'web' },
      'web.test',
      'dns',
    ],
    ['else the subject CN', { commonName: 'legacy-client' }, 'legacy-client', 'cn'],
  ])('takes %s', async (_, names, id, source) => {
    const pki = await createTestCa();
    const address = await startIdentityServer({
      credentials: mtlsServerCredentials(await serverFiles(pki)),
    });
    const paths = await pki.files('client', { ...names, usage: 'client' });
    const client = connectClient(
      address,
      mtlsChannelCredentials(await watchCertificateFiles(paths)),
    );
    expect(seen(await client.unary({}))).toEqual({
      id,
      source,
      tlsPeer: id,
      serialNumber: paths.serialNumber,
      scopePeer: { id, source },
    });
  });

  it('ignores SPIFFE URIs when there are several (not an X.509-SVID), as grpc-go does', () => {
    const certificate = {
      subjectaltname: 'URI:spiffe://td/a, URI:spiffe://td/b, URI:https://x.test/, DNS:b.test',
      subject: { CN: 'c' },
      serialNumber: '01',
    } as unknown as PeerCertificate;
    expect(certificateIdentity(certificate)).toMatchObject({
      id: 'b.test',
      source: 'dns',
      spiffeId: undefined,
      uris: ['spiffe://td/a', 'spiffe://td/b', 'https://x.test/'],
    });
  });

  it('reads names node quotes because they hold special characters as single names', () => {
    // What node (since CVE-2021-44532) prints for a name containing a comma or a quote.
    const text = 'URI:"spiffe://a/b\\u002cc", URI:spiffe://x/y, DNS:"we\\u002cird\\"x", email:e@x';
    expect(parseSubjectAltNames(text)).toEqual([
      { type: 'URI', value: 'spiffe://a/b,c' },
      { type: 'URI', value: 'spiffe://x/y' },
      { type: 'DNS', value: 'we,ird"x' },
      { type: 'email', value: 'e@x' },
    ]);
    expect(() => parseSubjectAltNames('URI:"unterminated')).toThrow(SyntaxError);
  });

  it('fails every call with a clear error when the server lacks the inbound-call interceptor', async () => {
    const pki = await createTestCa();
    const address = await startIdentityServer({
      credentials: mtlsServerCredentials(await serverFiles(pki)),
      withoutInterceptor: true,
    });
    const client = connectClient(
      address,
      mtlsChannelCredentials(await filesFor(pki, 'frontend', FRONTEND)),
    );
    const error = await client.unary({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect([(error as ClientError).code, (error as ClientError).details]).toEqual([
      Status.INTERNAL,
      "peerIdentityServerMiddleware needs the grpc-js call: create the server with createServer(withInboundCall()) from '@switchyard/nice-grpc'",
    ]);
  });
});

describe('identity header from trusted proxies', () => {
  let downstreamScopePeers: (PeerIdentity | undefined)[] = [];
  const channels: Channel[] = [];
  afterEach(() => {
    downstreamScopePeers = [];
    for (const channel of channels.splice(0)) channel.close();
  });

  // Reads the call scope where an outgoing call starts, as a retry or tracing middleware would.
  const recordScopePeer: ClientMiddleware = (call, options) => {
    downstreamScopePeers.push(currentCallScope()?.peer);
    return call.next(call.request, options);
  };

  /** A backend that believes `l5d-client-id` from the gateway only. */
  async function backend(pki: TestCa): Promise<string> {
    return startIdentityServer({
      credentials: mtlsServerCredentials(await serverFiles(pki)),
      identity: { trustedProxies: ['spiffe://test.local/ns/mesh/sa/*'] },
    });
  }

  /** A gateway whose Unary handler calls the backend, and reports what both saw. */
  async function gateway(pki: TestCa, backendAddress: string): Promise<string> {
    const credentials = mtlsChannelCredentials(await filesFor(pki, 'gateway', GATEWAY));
    const channel = createChannel(backendAddress, credentials, {
      'grpc.ssl_target_name_override': 'localhost',
    });
    channels.push(channel);
    const downstream = createClientFactory()
      .use(recordScopePeer)
      .use(identityHeaderClientMiddleware())
      .create(TestServiceDefinition, channel);
    const implementation: TestServiceImplementation<PeerIdentityContext> = {
      ...createTestServiceImpl({ backend: 'gateway' }),
      async unary(_request, context) {
        const here: SeenIdentity = {
          id: context.peerIdentity?.id,
          source: context.peerIdentity?.source,
          scopePeer: currentCallScope()?.peer,
        };
        // Past an await, as real handlers are.
        await new Promise((resolve) => setTimeout(resolve, 5));
        const there = seen(await downstream.unary({}));
        // A header the handler sets itself is left as it is.
        const explicit = seen(
          await downstream.unary({}, { metadata: Metadata({ 'l5d-client-id': ADMIN }) }),
        );
        return TestResponse.fromPartial({ payload: JSON.stringify({ here, there, explicit }) });
      },
    };
    return startIdentityServer({
      credentials: mtlsServerCredentials(await serverFiles(pki)),
      implementation,
    });
  }

  it('gives a handler and the calls it makes the caller identity, end to end', async () => {
    const pki = await createTestCa();
    const front = await gateway(pki, await backend(pki));
    const client = connectClient(
      front,
      mtlsChannelCredentials(await filesFor(pki, 'frontend', FRONTEND)),
    );
    const { here, there, explicit } = JSON.parse((await client.unary({})).payload) as {
      here: SeenIdentity;
      there: SeenIdentity;
      explicit: SeenIdentity;
    };
    expect(here).toEqual({
      id: FRONTEND,
      source: 'spiffe',
      scopePeer: { id: FRONTEND, source: 'spiffe' },
    });
    expect(downstreamScopePeers).toEqual([
      { id: FRONTEND, source: 'spiffe' },
      { id: FRONTEND, source: 'spiffe' },
    ]);
    expect(there).toMatchObject({
      id: FRONTEND,
      source: 'header',
      tlsPeer: GATEWAY,
      scopePeer: { id: FRONTEND, source: 'header' },
    });
    expect(explicit).toMatchObject({ id: ADMIN, source: 'header', tlsPeer: GATEWAY });
  });

  it('does not believe a forged header from a client it does not trust, and hides it', async () => {
    const pki = await createTestCa();
    const address = await backend(pki);
    const client = connectClient(
      address,
      mtlsChannelCredentials(await filesFor(pki, 'frontend', FRONTEND)),
    );
    const response = await client.unary(
      { echoMetadata: ['l5d-client-id'] },
      { metadata: Metadata({ 'l5d-client-id': ADMIN }) },
    );
    expect(seen(response)).toMatchObject({ id: FRONTEND, source: 'spiffe', tlsPeer: FRONTEND });
    expect(response.metadata).toEqual({});
  });

  it('believes the header from a trusted proxy, and the proxy itself without one', async () => {
    const pki = await createTestCa();
    const address = await backend(pki);
    const proxy = connectClient(
      address,
      mtlsChannelCredentials(await filesFor(pki, 'gateway', GATEWAY)),
    );
    const vouched = await proxy.unary(
      { echoMetadata: ['l5d-client-id'] },
      { metadata: Metadata({ 'l5d-client-id': ADMIN }) },
    );
    expect(seen(vouched)).toMatchObject({ id: ADMIN, source: 'header', tlsPeer: GATEWAY });
    expect(vouched.metadata).toEqual({ 'l5d-client-id': ADMIN });
    expect(seen(await proxy.unary({}))).toMatchObject({ id: GATEWAY, source: 'spiffe' });
  });

  it.each([
    ['two values', [ADMIN, FRONTEND]],
    ['an empty value', ['']],
    ['a list in one value', [`${ADMIN}, ${FRONTEND}`]],
  ])('refuses a trusted proxy header with %s', async (_, values) => {
    const pki = await createTestCa();
    const address = await backend(pki);
    const proxy = connectClient(
      address,
      mtlsChannelCredentials(await filesFor(pki, 'gateway', GATEWAY)),
    );
    const error = await proxy
      .unary({}, { metadata: Metadata({ 'l5d-client-id': values }) })
      .catch((e: unknown) => e);
    expect([(error as ClientError).code, (error as ClientError).details]).toEqual([
      Status.UNAUTHENTICATED,
      'malformed l5d-client-id header',
    ]);
  });
});
