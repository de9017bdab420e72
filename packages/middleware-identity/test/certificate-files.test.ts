import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCertificateAuthority, issueCertificate } from '@switchyard/certs';
import { createTestServiceImpl, TestServiceDefinition } from '@switchyard/testing';
import { createServer } from 'nice-grpc';
import { describe, expect, it } from 'vitest';
import {
  type CertificateFileError,
  CertificateFiles,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  watchCertificateFiles,
} from '../src/index.js';
import { createTestCa, FRONTEND, LOOPBACK_SERVER } from './pki.js';
import { connectClient } from './servers.js';

const DAY = 24 * 60 * 60 * 1000;

describe('loading', () => {
  it('describes the certificate it loaded', async () => {
    const pki = await createTestCa();
    const paths = await pki.files('frontend', { spiffeId: FRONTEND, usage: 'client' });
    const files = await watchCertificateFiles(paths);
    expect(files.certificate).toEqual({
      serialNumber: paths.serialNumber,
      subject: 'CN=switchyard',
      subjectAltName: `URI:${FRONTEND}`,
      validFrom: paths.notBefore,
      validTo: paths.notAfter,
    });
    expect([files.hasCa, files.hasIdentity]).toEqual([true, true]);
    const caOnly = await watchCertificateFiles({ caFile: paths.caFile });
    expect([caOnly.hasCa, caOnly.hasIdentity, caOnly.certificate]).toEqual([
      true,
      false,
      undefined,
    ]);
  });

  it('names the file at fault', async () => {
    const pki = await createTestCa();
    const paths = await pki.files('frontend', { spiffeId: FRONTEND, usage: 'client' });
    const other = await pki.issue({ spiffeId: FRONTEND, usage: 'client' });
    const expired = await pki.issue({
      spiffeId: FRONTEND,
      notBefore: new Date(Date.now() - 2 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const file = (name: string, contents: string) => {
      const path = join(pki.dir, name);
      return writeFile(path, contents).then(() => path);
    };
    const absent = join(pki.dir, 'absent.pem');
    const notACert = await file('junk.pem', 'hello\n');
    const badBody = await file(
      'bad-body.pem',
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    );
    const wrongKey = await file('wrong-key.pem', other.keyPem);
    const notAKey = await file('not-a-key.pem', paths.chainPem);
    const expiredCert = await file('expired.pem', expired.chainPem);
    const expiredKey = await file('expired-key.pem', expired.keyPem);
    const cases: [Parameters<typeof watchCertificateFiles>[0], string][] = [
      [{ ...paths, certFile: absent }, `${absent}: cannot read (ENOENT)`],
      [{ caFile: notACert }, `${notACert}: no PEM certificate found`],
      [{ caFile: badBody }, `${badBody}: certificate 1 is not a valid X.509 certificate`],
      [
        { ...paths, certFile: badBody },
        `${badBody}: the first certificate is not a valid X.509 certificate`,
      ],
      [
        { ...paths, keyFile: wrongKey },
        `${wrongKey}: private key does not belong to the certificate in ${paths.certFile}`,
      ],
      [{ ...paths, keyFile: notAKey }, `${notAKey}: not a PEM private key`],
      [
        { ...paths, certFile: expiredCert, keyFile: expiredKey },
        `${expiredCert}: certificate expired at ${expired.notAfter.toISOString()}`,
      ],
    ];
    for (const [options, message] of cases) {
      await expect(watchCertificateFiles(options)).rejects.toThrow(message);
    }
    await expect(watchCertificateFiles({ certFile: paths.certFile })).rejects.toThrow(
      'certFile and keyFile must be given together',
    );
    await expect(watchCertificateFiles({})).rejects.toThrow(
      'give caFile, or certFile and keyFile, or all three',
    );
    await expect(watchCertificateFiles({ ...paths, refreshIntervalMs: 0 })).rejects.toThrow(
      'refreshIntervalMs must be a positive number, got 0',
    );
  });

  it('refuses credentials the files cannot make', async () => {
    const pki = await createTestCa();
    const paths = await pki.files('frontend', { spiffeId: FRONTEND });
    const caOnly = await watchCertificateFiles({ caFile: paths.caFile });
    const identityOnly = await watchCertificateFiles({ ...paths, caFile: undefined });
    expect(() => mtlsServerCredentials(caOnly)).toThrow(
      'mTLS server credentials need caFile, certFile and keyFile',
    );
    expect(() => mtlsServerCredentials(identityOnly)).toThrow(
      'mTLS server credentials need caFile, certFile and keyFile',
    );
    expect(() => mtlsChannelCredentials(identityOnly)).toThrow(
      'TLS channel credentials need caFile',
    );
  });
});

describe('reloading', () => {
  it('switches only to a complete, valid set, and reports each distinct problem once', async () => {
    const pki = await createTestCa();
    const paths = await pki.files('server', LOOPBACK_SERVER);
    const errors: string[] = [];
    const reloads: (string | undefined)[] = [];
    const files = await watchCertificateFiles({
      ...paths,
      onError: (error: CertificateFileError) => errors.push(error.message),
      onReload: (certificate) => reloads.push(certificate?.serialNumber),
    });
    expect(await files.reload()).toBe(false);

    const renewed = await pki.issue(LOOPBACK_SERVER);
    await writeFile(paths.certFile, renewed.chainPem);
    expect(await files.reload()).toBe(false);
    expect(await files.reload()).toBe(false);
    expect(files.certificate?.serialNumber).toBe(paths.serialNumber);
    expect(errors).toEqual([
      `${paths.keyFile}: private key does not belong to the certificate in ${paths.certFile}`,
    ]);

    await writeFile(paths.keyFile, renewed.keyPem);
    expect(await files.reload()).toBe(true);
    expect(files.certificate?.serialNumber).toBe(renewed.serialNumber);
    expect(reloads).toEqual([renewed.serialNumber]);

    // The same problem again after a good load is news again.
    await writeFile(paths.certFile, paths.chainPem);
    expect(await files.reload()).toBe(false);
    expect(errors).toHaveLength(2);
  });

  it('warns through process warnings by default', async () => {
    const pki = await createTestCa();
    const paths = await pki.files('server', LOOPBACK_SERVER);
    const files = await watchCertificateFiles(paths);
    await writeFile(paths.caFile, 'not a certificate\n');
    const warning = new Promise<Error>((resolve) => process.once('warning', resolve));
    expect(await files.reload()).toBe(false);
    expect(await warning).toMatchObject({
      name: 'CertificateFileWarning',
      message: `${paths.caFile}: no PEM certificate found`,
    });
  });

  it('polls only while a server or channel uses the files', async () => {
    const pki = await createTestCa();
    const paths = await pki.files('server', LOOPBACK_SERVER);
    const reloads: string[] = [];
    const files = await watchCertificateFiles({
      ...paths,
      refreshIntervalMs: 20,
      onReload: (certificate) => reloads.push(certificate!.serialNumber),
      // A poll may land between rotate()'s two writes and see a key that does not fit yet.
      onError: () => {},
    });
    const rotate = async () => {
      const renewed = await pki.issue(LOOPBACK_SERVER);
      await pki.write('server', renewed);
      return renewed.serialNumber;
    };

    // Not yet used: nothing polls.
    const unused = await rotate();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(reloads).toEqual([]);

    // In use: the change waiting on disk is picked up, and the next one too.
    const server = createServer();
    server.add(TestServiceDefinition, createTestServiceImpl({ backend: 'x' }));
    await server.listen('127.0.0.1:0', mtlsServerCredentials(files));
    await expect.poll(() => reloads, { interval: 20, timeout: 5_000 }).toEqual([unused]);
    const inUse = await rotate();
    await expect.poll(() => reloads, { interval: 20, timeout: 5_000 }).toEqual([unused, inUse]);

    await server.shutdown();
    await rotate();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(reloads).toEqual([unused, inUse]);
  });

  it('serves a client across a reload of a CA bundle that adds a second CA', async () => {
    const pki = await createTestCa();
    const serverPaths = await pki.files('server', LOOPBACK_SERVER);
    const files = await CertificateFiles.load(serverPaths);
    const server = createServer();
    server.add(TestServiceDefinition, createTestServiceImpl({ backend: 'x' }));
    const port = await server.listen('127.0.0.1:0', mtlsServerCredentials(files));
    try {
      // A client of a new CA is refused until the bundle trusts that CA too.
      const nextCa = await createCertificateAuthority({ commonName: 'Next CA' });
      const client = await issueCertificate(nextCa, { spiffeId: FRONTEND, usage: 'client' });
      const clientPaths = await pki.write('next-client', client);
      await writeFile(join(pki.dir, 'client-ca.pem'), pki.ca.certPem);
      const clientFiles = await watchCertificateFiles({
        ...clientPaths,
        caFile: join(pki.dir, 'client-ca.pem'),
      });
      const address = `127.0.0.1:${port}`;
      await expect(
        connectClient(address, mtlsChannelCredentials(clientFiles)).unary({}),
      ).rejects.toThrow(/UNAVAILABLE/);
      await writeFile(serverPaths.caFile, pki.ca.certPem + nextCa.certPem);
      expect(await files.reload()).toBe(true);
      const response = await connectClient(address, mtlsChannelCredentials(clientFiles)).unary({});
      expect(response.backend).toBe('x');
    } finally {
      server.forceShutdown();
    }
  });
});
