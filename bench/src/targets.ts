import type { Row, ScenarioResult } from './results.js';

const NICE_GRPC_PAIR = 'nice-grpc-opentelemetry + nice-grpc-prometheus';
const FULL_PIPELINE = 'proxy-kit, full pipeline';
const WITH_ADMIN = 'proxy-kit, admin + /metrics';

/** Issue 20: the admin listener, its instruments and a scrape a second cost ≤ 10% CPU per call. */
function adminTarget(row: Row, passThrough: Row | undefined): Row['target'] {
  const text = "CPU ≤ 1.10× pass-through's (issue 20)";
  const cpu = row.metrics.cpuSPer10k;
  const passCpu = passThrough?.metrics.cpuSPer10k;
  if (cpu === undefined || passCpu === undefined) return { text, measured: '—', met: undefined };
  const ratio = cpu / passCpu;
  return {
    text,
    measured: `${cpu.toFixed(2)} vs ${passCpu.toFixed(2)} CPU s: ${ratio.toFixed(2)}×`,
    met: ratio <= 1.1,
  };
}

/**
 * Issue 18: the full middleware pipeline costs at most 1.5× pass-through's CPU per call, and still
 * beats nginx and HAProxy on closed-loop throughput and CPU per call in the same run.
 */
function fullPipelineTarget(row: Row, other: (peer: string) => Row | undefined): Row['target'] {
  const text = "CPU ≤ 1.5× pass-through's; rate and CPU beat nginx's and HAProxy's (issue 18)";
  const passThrough = other('proxy-kit');
  const peers = ['nginx', 'HAProxy'].map(other).filter((peer) => peer && !peer.absent) as Row[];
  const cpu = row.metrics.cpuSPer10k;
  const rate = row.metrics.rate;
  const passCpu = passThrough?.metrics.cpuSPer10k;
  if (cpu === undefined || rate === undefined || passCpu === undefined) {
    return { text, measured: '—', met: undefined };
  }
  const ratio = cpu / passCpu;
  const measured = [
    `${ratio.toFixed(2)}× pass-through`,
    ...peers.map(
      (peer) =>
        `${peer.peer} ${round(peer.metrics.rate)} req/s, ${peer.metrics.cpuSPer10k?.toFixed(2)} CPU s`,
    ),
  ].join('; ');
  const beats = peers.every(
    (peer) =>
      rate > (peer.metrics.rate ?? Number.POSITIVE_INFINITY) &&
      cpu < (peer.metrics.cpuSPer10k ?? 0),
  );
  return {
    text,
    measured: `${round(rate)} req/s, ${cpu.toFixed(2)} CPU s (${measured})`,
    met: peers.length === 2 ? ratio <= 1.5 && beats : undefined,
  };
}

/**
 * Issues 8 and 19, one worker against one-worker peers: throughput at least nginx's and
 * nghttpx's, CPU per call at most nghttpx's, and peak RSS under that load ≤ 64 MiB.
 */
function closedLoopTarget(row: Row, other: (peer: string) => Row | undefined): Row['target'] {
  const text = "rate ≥ nginx's and nghttpx's, CPU ≤ nghttpx's, RSS ≤ 64 MiB (issues 8, 19)";
  const nginx = other('nginx');
  const nghttpx = other('nghttpx');
  const { rate, cpuSPer10k: cpu, peakRssMb: rss } = row.metrics;
  if (row.absent || !nginx || nginx.absent || !nghttpx || nghttpx.absent) {
    return { text, measured: '—', met: undefined };
  }
  const measured =
    `${round(rate)} req/s, ${cpu?.toFixed(2)} CPU s, ${round(rss)} MiB; ` +
    `nginx ${round(nginx.metrics.rate)} req/s; nghttpx ${round(nghttpx.metrics.rate)} req/s, ` +
    `${nghttpx.metrics.cpuSPer10k?.toFixed(2)} CPU s`;
  const met =
    (rate ?? 0) >= (nginx.metrics.rate ?? 0) &&
    (rate ?? 0) >= (nghttpx.metrics.rate ?? 0) &&
    (cpu ?? Number.POSITIVE_INFINITY) <= (nghttpx.metrics.cpuSPer10k ?? 0) &&
    (rss ?? Number.POSITIVE_INFINITY) <= 64;
  return { text, measured, met };
}

/**
 * The speed goals other issues set, attached to the rows they are about: for each scenario, a
 * function from a row (and its scenario's rows) to the row's target, or undefined.
 */
const TARGETS: Record<string, (row: Row, rows: readonly Row[]) => Row['target']> = {
  middleware: (row, rows) => middlewareTarget(row, rows, 'cpuUsPerMessage'),
  instructions: (row, rows) => middlewareTarget(row, rows),
  proxy(row, rows) {
    const other = (peer: string) =>
      rows.find((candidate) => candidate.case === row.case && candidate.peer === peer);
    if (row.peer === FULL_PIPELINE && row.case.startsWith('closed loop')) {
      return fullPipelineTarget(row, other);
    }
    if (row.peer === WITH_ADMIN && row.case.startsWith('closed loop')) {
      return adminTarget(row, other('proxy-kit'));
    }
    if (row.peer !== 'proxy-kit') return undefined;
    if (row.case === '1,000 req/s') {
      const added =
        (row.metrics.p99Ms ?? Number.NaN) -
        (other('direct (no proxy)')?.metrics.p99Ms ?? Number.NaN);
      return {
        text: 'added p99 ≤ 1 ms (issue 8)',
        measured: Number.isNaN(added) ? '—' : `${added >= 0 ? '+' : ''}${added.toFixed(2)} ms`,
        met: Number.isNaN(added) ? undefined : added <= 1,
      };
    }
    if (row.case.startsWith('closed loop')) return closedLoopTarget(row, other);
    return undefined;
  },
  balancing(row) {
    if (row.peer !== 'proxy-kit p2c-ewma' || row.absent) return undefined;
    const share = row.metrics.slowShare;
    return {
      text: '< 10% of calls to the slow backend (issue 8)',
      measured: share === undefined ? '—' : `${share.toFixed(1)}%`,
      met: share === undefined ? undefined : share < 10,
    };
  },
  'balanced-channel'(row) {
    if (row.absent || !row.peer.startsWith('balanced channel p2c-ewma, 3')) return undefined;
    if (row.case.startsWith('unary')) return overheadAtMost(row, 0.05, 'issue 22');
    const { slowShare, p99Ms } = row.metrics;
    if (slowShare === undefined || p99Ms === undefined) return undefined;
    return {
      text: '< 10% to the slow backend and p99 < 10 ms (issue 22)',
      measured: `${slowShare.toFixed(1)}%, p99 ${p99Ms.toFixed(1)} ms`,
      met: slowShare < 10 && p99Ms < 10,
    };
  },
};

/**
 * The goals of issues 3, 4 and 7, measured in CPU time and in instructions alike. `pairedKey`
 * names the metric of paired CPU-time rows, which are decided only beyond their noise.
 */
function middlewareTarget(row: Row, rows: readonly Row[], pairedKey?: string): Row['target'] {
  const unary = row.case.startsWith('unary');
  if (unary && row.peer === 'Switchyard deadline + cancellation')
    return overheadAtMost(row, 0.05, 'issue 3');
  if (unary && row.peer === 'Switchyard retry') return overheadAtMost(row, 0.03, 'issue 4');
  // Like for like: each Switchyard stack against the pair with the same SDK, or with none.
  const sdk = /, ((?:no )?SDK.*)$/.exec(row.peer)?.[1];
  if (sdk && row.peer.startsWith('Switchyard metrics + tracing')) {
    const pair = rows.find(
      (other) => other.case === row.case && other.peer === `${NICE_GRPC_PAIR}, ${sdk}`,
    );
    const text = `overhead ≤ the nice-grpc pair's (issue 7)`;
    const measured = `${percent(row.ratio)}${scatter(row)} vs ${percent(pair?.ratio)}${pair ? scatter(pair) : ''}`;
    if (row.ratio === undefined || pair?.ratio === undefined) {
      return { text, measured, met: undefined };
    }
    if (pairedKey === undefined) return { text, measured, met: row.ratio <= pair.ratio };
    // The two stacks were measured in the same repetitions: compared repetition by repetition,
    // and decided, like the goals above, only when every repetition says the same.
    const own = (row.samples ?? []).map((sample) => sample[pairedKey]!);
    const theirs = (pair.samples ?? []).map((sample) => sample[pairedKey]!);
    if (own.length < 2 || own.length !== theirs.length) {
      return { text, measured, met: row.ratio <= pair.ratio };
    }
    const cheaper = own.filter((value, repetition) => value <= theirs[repetition]!).length;
    if (cheaper === own.length) return { text, measured, met: true };
    if (cheaper === 0) return { text, measured, met: false };
    return { text, measured, met: undefined, withinNoise: true };
  }
  return undefined;
}

/** Sets `target` on every row of `result` that a goal applies to. */
export function applyTargets(result: ScenarioResult): ScenarioResult {
  const targetOf = TARGETS[result.id];
  if (targetOf) for (const row of result.rows) row.target = targetOf(row, result.rows);
  return result;
}

function overheadAtMost(row: Row, overhead: number, issue: string): Row['target'] {
  const text = `≤ ${Math.round(overhead * 100)}% over ${row.baseline} (${issue})`;
  const limit = 1 + overhead;
  if (row.ratio === undefined) return { text, measured: '—', met: undefined };
  if (row.ratioRange === undefined) {
    return { text, measured: `${percent(row.ratio)}${scatter(row)}`, met: row.ratio <= limit };
  }
  // Paired CPU-time ratios: decided only when every repetition falls on the same side of the
  // goal (94% confidence with five). On this shared machine CPU time per call moves by ±10–15%
  // between adjacent windows of one process, so a few-percent goal is often left to the
  // instruction counts, whose rows carry the same goal.
  const [least, greatest] = row.ratioRange;
  const measured = `${percent(row.ratio)} (${percent(least)} to ${percent(greatest)})`;
  if (greatest <= limit) return { text, measured, met: true };
  if (least > limit) return { text, measured, met: false };
  return { text, measured, met: undefined, withinNoise: true };
}

function percent(ratio: number | undefined): string {
  if (ratio === undefined) return '—';
  const overhead = (ratio - 1) * 100;
  return `${overhead >= 0 ? '+' : ''}${overhead.toFixed(1)}%`;
}

/** The ratio's scatter over the repetitions, as shown beside it in the tables. */
function scatter(row: Row): string {
  return row.ratioSpread ? ` ±${Math.round(row.ratioSpread * 100)}%` : '';
}

function round(value: number | undefined): string {
  return value === undefined ? '—' : Math.round(value).toLocaleString('en');
}
