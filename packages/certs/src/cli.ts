import { constants } from 'node:fs';
import { access, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type CertificateAuthority, createCertificateAuthority } from './authority.js';
import { type CertificateUsage, type IssuedCertificate, issueCertificate } from './issue.js';
import type { KeyType } from './keys.js';

/** Where the CLI reports what it wrote: `process` in the binary. */
export interface CliOutput {
  stdout: { write(text: string): unknown };
}

/** The `switchyard certs` usage text. */
export const CERTS_USAGE = `Usage:
  switchyard certs ca --out <dir> [--cn <name>] [--days <n>] [--key ec-p256|rsa-2048] [--force]
      Writes a development CA: <dir>/ca.pem and <dir>/ca-key.pem.

  switchyard certs issue --ca <dir> --out <dir> [--spiffe <id>] [--dns <name>]... [--ip <addr>]...
                         [--cn <name>] [--usage server|client|both] [--days <n>]
                         [--key ec-p256|rsa-2048] [--force]
      Issues a certificate from the CA in --ca: <out>/cert.pem (certificate, then the CA),
      <out>/key.pem and <out>/ca.pem (the CA, to verify peers with).
`;

/** A mistake in the command line: reported with the usage text, exit status 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

/**
 * Runs `switchyard certs <args>` (`args` starts after `certs`). Resolves when the files are
 * written; rejects with a {@link CliUsageError} for a malformed command line, or another error when
 * the work fails (unreadable CA, file already there).
 */
export async function runCertsCli(args: readonly string[], output: CliOutput): Promise<void> {
  const [command, ...rest] = args;
  if (command === 'ca') return createCa(rest, output);
  if (command === 'issue') return issue(rest, output);
  if (command === '--help' || command === '-h') {
    output.stdout.write(CERTS_USAGE);
    return;
  }
  throw new CliUsageError(
    command === undefined ? 'missing command' : `unknown command ${JSON.stringify(command)}`,
  );
}

const COMMON = {
  out: { type: 'string' },
  cn: { type: 'string' },
  days: { type: 'string' },
  key: { type: 'string' },
  force: { type: 'boolean', default: false },
} as const;

async function createCa(args: string[], output: CliOutput): Promise<void> {
  const { values } = parsed(() => parseArgs({ args, options: COMMON }));
  const out = required(values.out, '--out');
  const ca = await createCertificateAuthority({
    commonName: values.cn,
    keyType: choice(values.key, KEY_TYPES, '--key'),
    validityDays: days(values.days),
  });
  const files = { 'ca.pem': ca.certPem, 'ca-key.pem': ca.keyPem };
  await writeAll(out, files, values.force);
  output.stdout.write(describe('CA', out, ca, ['ca.pem', 'ca-key.pem']));
}

async function issue(args: string[], output: CliOutput): Promise<void> {
  const { values } = parsed(() =>
    parseArgs({
      args,
      options: {
        ...COMMON,
        ca: { type: 'string' },
        spiffe: { type: 'string' },
        dns: { type: 'string', multiple: true },
        ip: { type: 'string', multiple: true },
        usage: { type: 'string' },
      },
    }),
  );
  const out = required(values.out, '--out');
  const caDir = required(values.ca, '--ca');
  if (values.spiffe === undefined && !values.dns && !values.ip && values.cn === undefined) {
    throw new CliUsageError('give at least one name: --spiffe, --dns, --ip or --cn');
  }
  // Every option is checked before the CA is read, so a typo is reported as one.
  const options = {
    commonName: values.cn,
    spiffeId: values.spiffe,
    dnsNames: values.dns,
    ipAddresses: values.ip,
    usage: choice(values.usage, USAGES, '--usage'),
    keyType: choice(values.key, KEY_TYPES, '--key'),
    validityDays: days(values.days),
  };
  const ca = {
    certPem: await readCaFile(caDir, 'ca.pem'),
    keyPem: await readCaFile(caDir, 'ca-key.pem'),
  };
  const certificate = await issueCertificate(ca, options);
  const files = {
    'cert.pem': certificate.chainPem,
    'key.pem': certificate.keyPem,
    'ca.pem': ca.certPem,
  };
  await writeAll(out, files, values.force);
  output.stdout.write(describe('certificate', out, certificate, Object.keys(files)));
}

// parseArgs is strict by default: unknown options and stray arguments throw.
function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    // node's messages name the option ("Unknown option '--spife'"); keep them, add the usage.
    throw new CliUsageError((error as Error).message);
  }
}

function required(value: string | undefined, option: string): string {
  if (value === undefined || value === '') throw new CliUsageError(`missing ${option}`);
  return value;
}

const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'rsa-2048'];
const USAGES: readonly CertificateUsage[] = ['server', 'client', 'both'];

function choice<T extends string>(
  value: string | undefined,
  choices: readonly T[],
  option: string,
): T | undefined {
  if (value === undefined || (choices as readonly string[]).includes(value)) {
    return value as T | undefined;
  }
  throw new CliUsageError(
    `${option} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`,
  );
}

function days(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!(Number.isFinite(parsed) && parsed > 0)) {
    throw new CliUsageError(`--days must be a positive number, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

async function readCaFile(dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new Error(
      `cannot read ${path} (${reason}); create a CA with: switchyard certs ca --out ${dir}`,
    );
  }
}

// Checks every target before writing any, so a refusal never leaves half a set behind.
async function writeAll(dir: string, files: Record<string, string>, force: boolean): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (!force) {
    for (const name of Object.keys(files)) {
      const path = join(dir, name);
      const exists = await access(path, constants.F_OK).then(
        () => true,
        () => false,
      );
      if (exists) throw new Error(`${path} exists; pass --force to overwrite it`);
    }
  }
  for (const [name, contents] of Object.entries(files)) {
    // Private keys readable by their owner only, as ssh and openssl expect.
    const mode = name.endsWith('key.pem') ? 0o600 : 0o644;
    const path = join(dir, name);
    await writeFile(path, contents, { mode });
    // The mode above applies only to a new file; --force may be overwriting one.
    await chmod(path, mode);
  }
}

function describe(
  what: string,
  dir: string,
  material: CertificateAuthority | IssuedCertificate,
  names: string[],
): string {
  const written = names.map((name) => join(resolve(dir), name)).join('\n  ');
  return (
    `${what} serial ${material.serialNumber}, valid until ${material.notAfter.toISOString()}\n` +
    `  ${written}\n`
  );
}
