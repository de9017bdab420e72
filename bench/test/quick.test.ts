import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../src/report.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'switchyard-bench-quick-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

// The figures of a quick run mean nothing (one short repetition on a shared machine); what it
// proves is that every scenario runs end to end against real servers, proxies and h2load.
describe('npm run bench -- --quick', () => {
  it('fills every row of every scenario with figures, or says why the peer is absent', async () => {
    await promisify(execFile)(process.execPath, [cli, '--quick', '--out', out], {
      timeout: 480_000,
    });

    const [json] = readdirSync(join(out, 'results'));
    const report: RunReport = JSON.parse(readFileSync(join(out, 'results', json!), 'utf8'));
    expect(report.scenarios.map((scenario) => [scenario.id, scenario.failed])).toEqual([
      ['middleware', undefined],
      ['instructions', undefined],
      ['proxy', undefined],
      ['balancing', undefined],
      ['scale', undefined],
      ['balanced-channel', undefined],
    ]);
    for (const scenario of report.scenarios) {
      expect(scenario.rows.length, scenario.id).toBeGreaterThan(0);
      for (const row of scenario.rows) {
        const where = `${scenario.id}: ${row.case}, ${row.peer}`;
        if (row.absent) {
          expect(row.absent, where).toMatch(/apt-get install|not built yet/);
        } else {
          // Calls went through: a rate (or instructions counted per call), and no NaN or
          // Infinity from a division by nothing.
          const key = ['rate', 'instructionsPerMessage', 'instructionsPerCall'].find(
            (candidate) => candidate in row.metrics,
          );
          const figure = row.metrics[key ?? 'rate'];
          expect(figure, where).toBeGreaterThan(0);
          expect(Number.isFinite(figure), where).toBe(true);
        }
      }
    }
    const markdown = readFileSync(join(out, 'RESULTS-quick.md'), 'utf8');
    for (const scenario of report.scenarios) expect(markdown).toContain(`## ${scenario.title}`);
    expect(markdown).toContain(`${report.machine.cores} cores`);
  }, 500_000);
});
