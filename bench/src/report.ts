import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Machine } from './machine.js';
import type { Row, ScenarioResult, Target } from './results.js';

/** Everything one run produced: written as JSON, rendered as markdown. */
export interface RunReport {
  machine: Machine;
  quick: boolean;
  durationS: number;
  scenarios: ScenarioResult[];
}

/** Writes `results/<date>[-quick].json` and `RESULTS[-quick].md` under `dir`; returns their paths. */
export function writeReport(report: RunReport, dir: string): { json: string; markdown: string } {
  const paths = reportPaths(report, dir);
  mkdirSync(join(dir, 'results'), { recursive: true });
  writeFileSync(paths.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(paths.markdown, renderMarkdown(report, paths.jsonLink));
  return paths;
}

/** Writes only `RESULTS[-quick].md` under `dir`, from a report saved by an earlier run. */
export function rewriteMarkdown(report: RunReport, dir: string): string {
  const paths = reportPaths(report, dir);
  writeFileSync(paths.markdown, renderMarkdown(report, paths.jsonLink));
  return paths.markdown;
}

function reportPaths(report: RunReport, dir: string) {
  const suffix = report.quick ? '-quick' : '';
  const stamp = report.machine.date.slice(0, 16).replace(':', '');
  const jsonLink = `results/${stamp}${suffix}.json`;
  return { json: join(dir, jsonLink), markdown: join(dir, `RESULTS${suffix}.md`), jsonLink };
}

export function renderMarkdown(report: RunReport, jsonPath: string): string {
  const { machine } = report;
  const minutes = `${Math.floor(report.durationS / 60)} min ${Math.round(report.durationS % 60)} s`;
  const lines = [
    '# Switchyard benchmark results',
    '',
    `${report.quick ? 'Quick smoke run (`npm run bench -- --quick`): figures are not meaningful.' : 'Full run (`npm run bench`).'} ` +
      `Measured ${machine.date.slice(0, 16).replace('T', ' ')} UTC${machine.commit ? ` at commit ${machine.commit}` : ''}, ` +
      `${minutes}; every figure is the median of interleaved repetitions (counts in each section). Raw data: [${jsonPath}](${jsonPath}).`,
    '',
    `- Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGb} GB, Linux ${machine.kernel}, Node ${machine.node}.`,
    `- Load average when the run started: ${machine.loadAtStart.join(' / ')} (1 / 5 / 15 min) — other work sharing the cores shows up as noise.`,
    `- Peers: ${Object.entries(machine.versions)
      .map(([name, version]) => `${name} ${version}`)
      .join(' · ')}.`,
    '',
    '## Targets',
    '',
    ...table(
      ['scenario', 'case', 'peer', 'target', 'measured', 'met'],
      report.scenarios.flatMap((scenario) =>
        scenario.rows
          .filter((row) => row.target)
          .map((row) => [
            scenario.title,
            row.case,
            row.peer,
            row.target!.text,
            row.target!.measured,
            verdict(row.target!),
          ]),
      ),
    ),
  ];
  for (const scenario of report.scenarios) {
    if (scenario.failed) {
      lines.push('', `## ${scenario.title}`, '', '**Failed:**', '', '```', scenario.failed, '```');
      continue;
    }
    lines.push('', `## ${scenario.title}`, '', scenario.method, '');
    const header = ['case', 'peer', ...scenario.columns.map((column) => column.label)];
    if (scenario.ratioLabel) header.push(scenario.ratioLabel);
    header.push('target');
    lines.push(
      ...table(
        header,
        scenario.rows.map((row) => [
          row.case,
          peerCell(row, scenario.rows),
          ...scenario.columns.map((column) => formatNumber(row.metrics[column.key], column.digits)),
          ...(scenario.ratioLabel ? [ratioCell(row)] : []),
          row.target ? `${row.target.text}: ${verdict(row.target)}` : '',
        ]),
      ),
    );
    if (scenario.notes.length > 0) lines.push('', ...scenario.notes.map((note) => `- ${note}`));
  }
  return `${lines.join('\n')}\n`;
}

/** The peer, and its baseline when the scenario compares with more than one. */
function peerCell(row: Row, rows: readonly Row[]): string {
  if (row.absent) return `${row.peer} — **absent**: ${row.absent}`;
  const baselines = new Set(rows.map((other) => other.baseline).filter(Boolean));
  return row.baseline && baselines.size > 1 ? `${row.peer} (vs ${row.baseline})` : row.peer;
}

function ratioCell(row: Row): string {
  if (typeof row.ratio !== 'number') return '';
  const spread = row.ratioSpread ? ` ±${Math.round(row.ratioSpread * 100)}%` : '';
  return `${row.ratio.toFixed(2)}×${spread}`;
}

function verdict({ met, withinNoise }: Target): string {
  if (withinNoise) return '≈ within noise';
  return met === undefined ? 'n/a' : met ? '✅ met' : '❌ not met';
}

function formatNumber(value: number | undefined, digits: number): string {
  // NaN (nothing to measure, e.g. no stream finished) comes back from the JSON as null.
  if (typeof value !== 'number' || Number.isNaN(value)) return '—';
  return value.toLocaleString('en', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A markdown table with padded columns, as biome formats markdown. */
function table(header: string[], rows: string[][]): string[] {
  const cells = [header, ...rows].map((row) => row.map((cell) => cell.replaceAll('|', '\\|')));
  const widths = header.map((_, column) =>
    Math.max(3, ...cells.map((row) => displayWidth(row[column] ?? ''))),
  );
  const line = (row: string[]) =>
    `| ${row.map((cell, column) => cell + ' '.repeat(widths[column]! - displayWidth(cell))).join(' | ')} |`;
  const [head, ...body] = cells;
  return [line(head!), line(widths.map((width) => '-'.repeat(width))), ...body.map(line)];
}

// Emoji such as ✅ take two columns in a terminal and in biome's alignment.
function displayWidth(text: string): number {
  let width = 0;
  for (const character of text) width += /\p{Emoji_Presentation}/u.test(character) ? 2 : 1;
  return width;
}
