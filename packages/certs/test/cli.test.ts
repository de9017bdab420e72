import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

// The built binary, run as a user runs it: turbo builds the package before testing it.
const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const DAY_MS = 24 * 60 * 60 * 1000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function switchyard(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], (error, stdout, stderr) => {
      const code = error ? Number((error as NodeJS.ErrnoException).code ?? 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let dir: string;
beforeAll(() => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build first`);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function workdir(): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-cli-'));
  return dir;
}

const read = (path: string) => readFile(path, 'utf8');
const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('switchyard certs', () => {
  it('creates a CA and issues certificates that complete a mutual TLS handshake', async () => {
    const root = await workdir();
    const ca = join(root, 'ca');
    const made = await switchyard('certs', 'ca', '--out', ca, '--cn', 'CLI CA', '--days', '30');
    expect(made).toMatchObject({ code: 0, stderr: '' });
    expect(made.stdout).toContain(join(ca, 'ca-key.pem'));
    const caCert = new X509Certificate(await read(join(ca, 'ca.pem')));
    expect([caCert.ca, caCert.subject]).toEqual([true, 'CN=CLI CA']);
    expect(await mode(join(ca, 'ca-key.pem'))).toBe(0o600);

    const server = join(root, 'server');
    const client = join(root, 'client');
    const issued = await Promise.all([
      switchyard(
        'certs',
        'issue',
        '--ca',
        ca,
        '--out',
        server,
        '--dns',
        'localhost',
        '--ip',
        '127.0.0.1',
        '--usage',
        'server',
      ),
      switchyard(
        'certs',
        'issue',
        '--ca',
        ca,
        '--out',
        client,
        '--spiffe',
        'spiffe://test.local/ns/shop/sa/frontend',
        '--dns',
        'frontend.test',
        '--days',
        '7',
        '--key',
        'rsa-2048',
        '--usage',
        'client',
      ),
    ]);
    expect(issued.map((run) => run.code)).toEqual([0, 0]);

    const leaf = new X509Certificate(await read(join(client, 'cert.pem')));
    expect(leaf.subjectAltName).toBe(
      'URI:spiffe://test.local/ns/shop/sa/frontend, DNS:frontend.test',
    );
    expect(leaf.publicKey.asymmetricKeyType).toBe('rsa');
    expect(leaf.checkIssued(caCert) && leaf.verify(caCert.publicKey)).toBe(true);
    const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / DAY_MS;
    expect(days).toBeCloseTo(7, 0);
    expect(issued[1]!.stdout).toContain(`serial ${leaf.serialNumber}`);
    expect(await read(join(client, 'ca.pem'))).toBe(await read(join(ca, 'ca.pem')));
    expect(await mode(join(client, 'key.pem'))).toBe(0o600);

    const files = async (d: string) => ({
      ca: await read(join(d, 'ca.pem')),
      cert: await read(join(d, 'cert.pem')),
      key: await read(join(d, 'key.pem')),
    });
    const tlsServer = tls.createServer({
      ...(await files(server)),
      requestCert: true,
      rejectUnauthorized: true,
    });
    const peer = new Promise<string | undefined>((resolve) =>
      tlsServer.once('secureConnection', (socket) => {
        resolve(socket.getPeerCertificate().subjectaltname);
        socket.end();
      }),
    );
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    try {
      const socket = tls.connect({
        ...(await files(client)),
        host: '127.0.0.1',
        port: (tlsServer.address() as AddressInfo).port,
        servername: 'localhost',
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      expect(socket.authorized).toBe(true);
      expect(await peer).toBe('URI:spiffe://test.local/ns/shop/sa/frontend, DNS:frontend.test');
      socket.destroy();
    } finally {
      tlsServer.close();
    }
  });

  it('refuses to overwrite files unless forced, and then keeps keys private', async () => {
    const root = await workdir();
    expect((await switchyard('certs', 'ca', '--out', root)).code).toBe(0);
    const before = await read(join(root, 'ca.pem'));
    const again = await switchyard('certs', 'ca', '--out', root);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(
      `switchyard: ${join(root, 'ca.pem')} exists; pass --force to overwrite it\n`,
    );
    expect(await read(join(root, 'ca.pem'))).toBe(before);

    await writeFile(join(root, 'ca-key.pem'), 'old', { mode: 0o644 });
    const forced = await switchyard('certs', 'ca', '--out', root, '--force', '--key', 'rsa-2048');
    expect(forced.code).toBe(0);
    expect(await read(join(root, 'ca.pem'))).not.toBe(before);
    expect(await mode(join(root, 'ca-key.pem'))).toBe(0o600);
  });

  it.each([
    [['certs', 'ca'], 'missing --out'],
    [
      ['certs', 'ca', '--out', 'x', '--key', 'dsa'],
      '--key must be one of ec-p256, rsa-2048, got "dsa"',
    ],
    [['certs', 'ca', '--out', 'x', '--days', '0'], '--days must be a positive number, got "0"'],
    [['certs', 'issue', '--ca', 'c', '--out', 'x', '--spife', 'a'], "Unknown option '--spife'"],
    [
      ['certs', 'issue', '--ca', 'c', '--out', 'x'],
      'give at least one name: --spiffe, --dns, --ip or --cn',
    ],
    [
      ['certs', 'issue', '--ca', 'c', '--out', 'x', '--dns', 'a', '--usage', 'any'],
      '--usage must be one of server, client, both, got "any"',
    ],
    [['certs', 'sign'], 'unknown command "sign"'],
    [['proxy'], 'unknown command "proxy"'],
    [[], 'missing command'],
  ])('rejects %j with exit status 2, naming the problem', async (args, message) => {
    const run = await switchyard(...args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(`^switchyard: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    expect(run.stderr).toContain('Usage:');
  });

  it('says where the CA should be when it cannot read it', async () => {
    const root = await workdir();
    const run = await switchyard(
      'certs',
      'issue',
      '--ca',
      join(root, 'none'),
      '--out',
      root,
      '--dns',
      'a.test',
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `switchyard: cannot read ${join(root, 'none', 'ca.pem')} (ENOENT); create a CA with: switchyard certs ca --out ${join(root, 'none')}\n`,
    );
  });

  it('prints the usage on --help', async () => {
    const run = await switchyard('certs', '--help');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^Usage:\n {2}switchyard certs ca --out <dir>/);
  });
});
