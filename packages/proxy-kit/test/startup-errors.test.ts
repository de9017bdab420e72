import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './support/proxy-process.js';

// What an operator sees when the binary cannot start: one line on stderr naming what failed and
// why, and exit code 2 (as for an invalid config), never a stack trace.

const run = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(process.execPath, [CLI, ...args], { timeout: 10_000 });
    return { code: 0, stderr };
  } catch (error) {
    const { code, stderr } = error as { code: number; stderr: string };
    return { code, stderr };
  }
}

let taken: Server;
let port: number;

beforeAll(async () => {
  taken = createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  port = (taken.address() as AddressInfo).port;
});

afterAll(() => {
  taken.close();
});

describe('start-up errors are one line and exit code 2', () => {
  const upstream = ['--upstream', '127.0.0.1:1', '--workers', '1'];

  it('the listen address in use', async () => {
    expect(await cli(['--listen', `127.0.0.1:${port}`, ...upstream])).toEqual({
      code: 2,
      stderr: `proxy-kit: listen: cannot listen on 127.0.0.1:${port}: address already in use\n`,
    });
  });

  it('the admin address in use', async () => {
    expect(
      await cli(['--listen', '127.0.0.1:0', '--admin', `127.0.0.1:${port}`, ...upstream]),
    ).toEqual({
      code: 2,
      stderr: `proxy-kit: admin: cannot listen on 127.0.0.1:${port}: address already in use\n`,
    });
  });

  it('the address in use with several workers', async () => {
    const { code, stderr } = await cli([
      '--listen',
      `127.0.0.1:${port}`,
      '--upstream',
      '127.0.0.1:1',
      '--workers',
      '2',
    ]);
    expect(code).toBe(2);
    expect(stderr).toMatch(
      new RegExp(
        `^(proxy-kit: listen: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use\\n)+$`,
      ),
    );
  });

  it('a certificate that cannot be read, or is not one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'proxy-kit-startup-'));
    writeFileSync(join(dir, 'garbage.pem'), 'not a certificate\n');
    const config = (cert: string) => {
      const path = join(dir, 'proxy.yaml');
      writeFileSync(
        path,
        `listen: { address: 127.0.0.1:0, tls: { cert: ${cert}, key: ${cert} } }
workers: 1
discovery: { type: static, endpoints: [127.0.0.1:1] }
`,
      );
      return path;
    };
    const missing = await cli(['--config', config('missing.pem')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /^proxy-kit: .*proxy\.yaml: listen\.tls\.cert: cannot read missing\.pem: ENOENT[^\n]*\n$/,
    );
    const garbage = await cli(['--config', config('garbage.pem')]);
    expect(garbage.code).toBe(2);
    expect(garbage.stderr).toMatch(
      /^proxy-kit: listen\.tls: cannot use the certificate or key: [^\n]+\n$/,
    );
  });

  it('--admin with more than one worker', async () => {
    const { code, stderr } = await cli([
      '--admin',
      '127.0.0.1:0',
      '--upstream',
      '127.0.0.1:1',
      '--workers',
      '2',
    ]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^proxy-kit: admin needs workers: 1 \(got 2\)[^\n]*\n$/);
  });
});
