import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeMachine } from './machine.js';
import { type RunReport, rewriteMarkdown, writeReport } from './report.js';
import type { ScenarioResult, Settings } from './results.js';
import { scenarios } from './scenarios/index.js';
import { applyTargets } from './targets.js';

const USAGE = `Usage: npm run bench -- [--quick] [--only middleware,proxy] [--out <dir>]
       npm run bench -- --render results/<date>.json [--out <dir>]

  --quick     a ~1 minute smoke run: every scenario, one short repetition (figures not meaningful)
  --only      comma-separated scenario ids: ${scenarios.map((scenario) => scenario.id).join(', ')}
  --stacks    comma-separated parts of middleware stack names: measure only the stacks whose name
              contains one (and their baselines), e.g. --only middleware --stacks deadline,retry
  --out       where RESULTS.md and results/ go (default: the bench directory)
  --render    rewrite RESULTS.md from the figures a run saved, without measuring anything
`;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    stacks: { type: 'string' },
    out: { type: 'string' },
    render: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const dir = values.out
  ? resolve(values.out)
  : resolve(dirname(fileURLToPath(import.meta.url)), '..');
if (values.render) {
  const saved: RunReport = JSON.parse(readFileSync(values.render, 'utf8'));
  // The goals as this version states them, applied to the figures as they were measured.
  saved.scenarios = saved.scenarios.map(applyTargets);
  process.stderr.write(`wrote ${rewriteMarkdown(saved, dir)}\n`);
  process.exit(0);
}

const only = values.only?.split(',');
const unknown = only?.filter((id) => !scenarios.some((scenario) => scenario.id === id));
if (unknown?.length) {
  process.stderr.write(`unknown scenario: ${unknown.join(', ')}\n\n${USAGE}`);
  process.exit(2);
}

// Interrupted: exit, which stops every child process the bench started (see processes.ts).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

const started = Date.now();
const settings: Settings = {
  quick: values.quick,
  repetitions: values.quick ? 1 : 3,
  timeScale: values.quick ? 0.2 : 1,
  stacks: values.stacks?.split(','),
  log: (message) =>
    process.stderr.write(
      `[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`,
    ),
};
const machine = describeMachine();
settings.log(
  `${machine.cores} cores, load ${machine.loadAtStart.join(' ')}, ${values.quick ? 'quick' : 'full'} run`,
);

const results: ScenarioResult[] = [];
for (const scenario of scenarios.filter((candidate) => !only || only.includes(candidate.id))) {
  settings.log(`${scenario.title}…`);
  try {
    results.push(applyTargets(await scenario.run(settings)));
  } catch (error) {
    // One broken scenario must not cost the figures of the others; the run still fails at the end.
    const failed = error instanceof Error ? (error.stack ?? error.message) : String(error);
    settings.log(`${scenario.title} failed: ${failed}`);
    const { id, title } = scenario;
    results.push({ id, title, method: '', columns: [], rows: [], notes: [], failed });
  }
}

const written = writeReport(
  {
    machine,
    quick: values.quick,
    durationS: Math.round((Date.now() - started) / 1000),
    scenarios: results,
  },
  dir,
);
settings.log(`wrote ${written.markdown} and ${written.json}`);
if (results.some((result) => result.failed)) process.exitCode = 1;
