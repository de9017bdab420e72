import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('npm run demo', () => {
  it('runs real servers and a client, and every backend sees the caller’s trace context', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [main], { timeout: 30_000 });
    expect(stdout.match(/same ✓/g)).toHaveLength(6);
    expect(new Set(stdout.match(/backend-[abc]/g))).toEqual(
      new Set(['backend-a', 'backend-b', 'backend-c']),
    );
    expect(stdout).toContain('Every backend saw the trace context');
  });
});
