import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startServer } from './support/raw.js';

// The foreign conformance suite h2spec (github.com/summerwind/h2spec) against a server on this
// package: every test of its generic, http2 and hpack groups. It is not packaged for Debian or
// npm; build it with Go and point H2SPEC at the binary (see README.md). Skipped without it.

const binary = process.env.H2SPEC;
let present = false;
try {
  if (binary) {
    accessSync(binary, constants.X_OK);
    present = true;
  }
} catch {}

describe.skipIf(!present)('h2spec', () => {
  for (const strict of [false, true]) {
    it(`passes every test${strict ? ' (--strict)' : ''}`, { timeout: 120_000 }, async () => {
      const server = await startServer();
      const args = [
        '-h',
        '127.0.0.1',
        '-p',
        String(server.port),
        '-o',
        '2',
        ...(strict ? ['--strict'] : []),
      ];
      const output = await new Promise<string>((resolve) => {
        execFile(binary!, args, { timeout: 110_000 }, (_error, stdout) => resolve(stdout));
      });
      await server.close();
      const summary = /(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed/.exec(output);
      expect(summary, output.slice(-2000)).not.toBeNull();
      expect(Number(summary![4]), output.slice(output.indexOf('Failures:'))).toBe(0);
      expect(Number(summary![1])).toBeGreaterThanOrEqual(strict ? 147 : 146);
    });
  }
});
