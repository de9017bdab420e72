import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestRequest } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import {
  type CertificateFileError,
  type LoadedCertificate,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  watchCertificateFiles,
} from '../src/index.js';
import { createTestCa, FRONTEND, LOOPBACK_SERVER } from './pki.js';
import { connectClient, seen, startIdentityServer } from './servers.js';

/** Requests pushed one at a time into an open client stream. */
function requestQueue() {
  const pending: Partial<TestRequest>[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  async function* stream(): AsyncGenerator<Partial<TestRequest>> {
    while (true) {
      const next = pending.shift();
      if (next) {
        yield next;
      } else if (ended) {
        return;
      } else {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    }
  }
  const poke = () => {
    wake?.();
    wake = undefined;
  };
  return {
    stream: stream(),
    push(request: Partial<TestRequest>) {
      pending.push(request);
      poke();
    },
    end() {
      ended = true;
      poke();
    },
  };
}

/** Loads files refreshed every 50 ms, and a way to wait for the next reload. */
async function watched(paths: { caFile: string; certFile: string; keyFile: string }) {
  let reloaded: ((certificate: LoadedCertificate | undefined) => void) | undefined;
  const errors: CertificateFileError[] = [];
  const files = await watchCertificateFiles({
    ...paths,
    refreshIntervalMs: 50,
    onReload: (certificate) => reloaded?.(certificate),
    onError: (error) => errors.push(error),
  });
  const nextReload = () =>
    new Promise<LoadedCertificate | undefined>((resolve) => {
      reloaded = resolve;
    });
  return { files, nextReload, errors };
}

describe('certificate rotation without restart', () => {
  it('keeps an open stream on the old certificate and presents the new one to the next connection', async () => {
    const pki = await createTestCa();
    const original = await pki.files('server', LOOPBACK_SERVER);
    const server = await watched(original);
    const address = await startIdentityServer({ credentials: mtlsServerCredentials(server.files) });

    const clientFiles = await watchCertificateFiles(
      await pki.files('frontend', { spiffeId: FRONTEND, usage: 'client' }),
    );
    // Records the serial of the certificate the server presents on each new connection.
    const presented: string[] = [];
    const credentials = () =>
      mtlsChannelCredentials(clientFiles, {
        checkServerIdentity: (_host, certificate) => {
          presented.push(certificate.serialNumber);
          return undefined;
        },
      });

    const first = connectClient(address, credentials());
    const requests = requestQueue();
    const stream = first.bidi(requests.stream)[Symbol.asyncIterator]();
    requests.push({ payload: 'before' });
    expect((await stream.next()).value).toMatchObject({ payload: 'before', sequence: 0 });
    expect(presented).toEqual([original.serialNumber]);

    // Rotate: the certificate first, then its key, as a careless deploy script would; the
    // provider waits until the two belong together.
    const renewed = await pki.issue(LOOPBACK_SERVER);
    const reload = server.nextReload();
    await writeFile(original.certFile, renewed.chainPem);
    await new Promise((resolve) => setTimeout(resolve, 120));
    await writeFile(original.keyFile, renewed.keyPem);
    expect((await reload)?.serialNumber).toBe(renewed.serialNumber);

    // The open call goes on, on its connection, and finishes normally.
    requests.push({ payload: 'after' });
    expect((await stream.next()).value).toMatchObject({ payload: 'after', sequence: 1 });
    requests.end();
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(seen(await first.unary({})).id).toBe(FRONTEND);
    expect(presented).toEqual([original.serialNumber]);

    // A new connection gets the new certificate from the same, never restarted, server.
    const second = connectClient(address, credentials());
    expect(seen(await second.unary({})).id).toBe(FRONTEND);
    expect(presented).toEqual([original.serialNumber, renewed.serialNumber]);
  });

  it('presents a rotated client certificate on the next connection', async () => {
    const pki = await createTestCa();
    const serverFiles = await watchCertificateFiles(await pki.files('server', LOOPBACK_SERVER));
    const address = await startIdentityServer({ credentials: mtlsServerCredentials(serverFiles) });
    const original = await pki.files('frontend', { spiffeId: FRONTEND, usage: 'client' });
    const client = await watched(original);
    const credentials = mtlsChannelCredentials(client.files);

    const before = seen(await connectClient(address, credentials).unary({}));
    expect(before.serialNumber).toBe(original.serialNumber);

    // Atomic replacement, as Kubernetes and cert-manager do it.
    const renewed = await pki.issue({ spiffeId: FRONTEND, usage: 'client' });
    const reload = client.nextReload();
    await writeFile(join(pki.dir, 'next.pem'), renewed.chainPem);
    await writeFile(join(pki.dir, 'next-key.pem'), renewed.keyPem);
    await rename(join(pki.dir, 'next-key.pem'), original.keyFile);
    await rename(join(pki.dir, 'next.pem'), original.certFile);
    await reload;

    const after = seen(await connectClient(address, credentials).unary({}));
    expect(after).toMatchObject({ id: FRONTEND, serialNumber: renewed.serialNumber });
  });
});
