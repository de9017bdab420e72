import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuthorizationDecisionEvent } from '@switchyard/core';
import { callTestService, type TestMethod } from '@switchyard/testing';
import { Status } from 'nice-grpc-common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuthorizationOptions,
  loadAuthorizationPolicy,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  watchCertificateFiles,
} from '../src/index.js';
import { BILLING, createTestCa, FRONTEND, LOOPBACK_SERVER, type TestCa } from './pki.js';
import { connectClient, startIdentityServer } from './servers.js';

const SERVICE = 'switchyard.testing.v1.TestService';

const POLICY_YAML = `
rules:
  - name: frontends call everything
    methods: [${SERVICE}/*]
    identities: ['spiffe://test.local/ns/*/sa/frontend']
  - methods: [/${SERVICE}/Unary]
    identities: ['spiffe://test.local/ns/shop/sa/billing']
`;

interface Fixture {
  pki: TestCa;
  address: string;
  clientFor(spiffeId: string): Promise<ReturnType<typeof connectClient>>;
}

interface FixtureOptions extends Omit<AuthorizationOptions, 'policy'> {
  requireClientCertificate?: boolean;
}

async function fixture({
  requireClientCertificate,
  ...options
}: FixtureOptions = {}): Promise<Fixture> {
  const pki = await createTestCa();
  const policyFile = join(pki.dir, 'authz.yaml');
  await writeFile(policyFile, POLICY_YAML);
  const policy = await loadAuthorizationPolicy(policyFile);
  const serverFiles = await watchCertificateFiles(await pki.files('server', LOOPBACK_SERVER));
  const address = await startIdentityServer({
    credentials: mtlsServerCredentials(serverFiles, { requireClientCertificate }),
    authorization: { policy, ...options },
  });
  let clients = 0;
  return {
    pki,
    address,
    async clientFor(spiffeId) {
      const paths = await pki.files(`client-${clients++}`, { spiffeId, usage: 'client' });
      return connectClient(address, mtlsChannelCredentials(await watchCertificateFiles(paths)));
    },
  };
}

const decisions: AuthorizationDecisionEvent[] = [];
const record = (event: unknown) => decisions.push(event as AuthorizationDecisionEvent);
beforeAll(() => subscribe('switchyard:identity:authorization', record));
afterAll(() => unsubscribe('switchyard:identity:authorization', record));
afterEach(() => {
  decisions.length = 0;
});

const METHODS: TestMethod[] = ['Unary', 'ServerStream', 'ClientStream', 'Bidi'];

describe('authorization policy from a YAML file', () => {
  it.each(METHODS)('lets an allowed identity call %s', async (method) => {
    const { clientFor } = await fixture();
    const client = await clientFor('spiffe://test.local/ns/cart/sa/frontend');
    const outcome = await callTestService(client, { method, requests: [{ responseCount: 2 }] });
    expect(outcome.status.code).toBe(Status.OK);
    expect(outcome.responses.length).toBeGreaterThan(0);
  });

  it.each(METHODS.filter((method) => method !== 'Unary'))(
    'denies %s to an identity allowed only Unary, naming the method and nothing else',
    async (method) => {
      const { clientFor } = await fixture();
      const client = await clientFor(BILLING);
      expect((await callTestService(client, { method: 'Unary', requests: [{}] })).status.code).toBe(
        Status.OK,
      );
      const outcome = await callTestService(client, { method, requests: [{ responseCount: 2 }] });
      expect(outcome.responses).toEqual([]);
      expect(outcome.status).toEqual({
        code: Status.PERMISSION_DENIED,
        details: `permission denied for /${SERVICE}/${method}`,
      });
    },
  );

  it('denies an identity no rule names (default deny)', async () => {
    const { clientFor } = await fixture();
    const client = await clientFor('spiffe://test.local/ns/shop/sa/intruder');
    const outcome = await callTestService(client, { method: 'Unary', requests: [{}] });
    expect(outcome.status).toEqual({
      code: Status.PERMISSION_DENIED,
      details: `permission denied for /${SERVICE}/Unary`,
    });
  });

  it('publishes every decision on the diagnostics channel, for metrics', async () => {
    const { pki, address, clientFor } = await fixture({ requireClientCertificate: false });
    const frontend = await clientFor(FRONTEND);
    const billing = await clientFor(BILLING);
    const anonymous = connectClient(
      address,
      mtlsChannelCredentials(await watchCertificateFiles({ caFile: join(pki.dir, 'ca.pem') })),
    );
    await callTestService(frontend, { method: 'Unary', requests: [{}] });
    await callTestService(billing, { method: 'Unary', requests: [{}] });
    await callTestService(billing, { method: 'Bidi', requests: [{}] });
    await callTestService(anonymous, { method: 'ClientStream', requests: [{}] });
    expect(decisions).toEqual([
      { method: `/${SERVICE}/Unary`, decision: 'allow', identity: FRONTEND },
      { method: `/${SERVICE}/Unary`, decision: 'allow', identity: BILLING },
      { method: `/${SERVICE}/Bidi`, decision: 'deny', identity: BILLING },
      { method: `/${SERVICE}/ClientStream`, decision: 'unauthenticated', identity: undefined },
    ]);
  });

  it('logs decisions when asked to', async () => {
    const lines: string[] = [];
    const logger = {
      info: (line: string) => lines.push(`info ${line}`),
      warn: (line: string) => lines.push(`warn ${line}`),
    };
    const { clientFor } = await fixture({ log: 'all', logger });
    const billing = await clientFor(BILLING);
    await callTestService(billing, { method: 'Unary', requests: [{}] });
    await callTestService(billing, { method: 'ServerStream', requests: [{}] });
    expect(lines).toEqual([
      `info authorization: allowed ${BILLING} calling /${SERVICE}/Unary (rules[1])`,
      `warn authorization: denied ${BILLING} calling /${SERVICE}/ServerStream`,
    ]);
  });

  it('logs nothing by default', async () => {
    const lines: string[] = [];
    const logger = { info: (l: string) => lines.push(l), warn: (l: string) => lines.push(l) };
    const { clientFor } = await fixture({ logger });
    await callTestService(await clientFor(BILLING), { method: 'Bidi', requests: [{}] });
    expect(lines).toEqual([]);
  });
});

describe('policy written in code', () => {
  it('is validated like a file, naming the key', async () => {
    const pki = await createTestCa();
    const files = await watchCertificateFiles(await pki.files('server', LOOPBACK_SERVER));
    await expect(
      startIdentityServer({
        credentials: mtlsServerCredentials(files),
        authorization: { policy: { rules: [{ methods: ['Unary'], identities: [FRONTEND] }] } },
      }),
    ).rejects.toThrow(
      "authorization policy: rules[0].methods[0]: expected 'package.Service/Method' (globs allowed) or '**'",
    );
  });
});
