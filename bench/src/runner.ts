import type { Measured, Row, Settings } from './results.js';
import { median, medianOfSamples } from './stats.js';

/**
 * Measures every peer `settings.repetitions` times, interleaved — A B C, C B A, A B C … — so
 * that a slow spell of a shared machine lands on every peer alike, and returns each peer's
 * samples and their medians. Warming up is the measurement's business (h2load's warm-up, the
 * hosts' first calls).
 */
export async function interleaved<Peer>(
  peers: readonly Peer[],
  settings: Settings,
  measure: (peer: Peer) => Promise<Record<string, number>>,
): Promise<Map<Peer, Measured>> {
  const samples = new Map<Peer, Record<string, number>[]>(peers.map((peer) => [peer, []]));
  for (let repetition = 0; repetition < settings.repetitions; repetition++) {
    const order = repetition % 2 === 0 ? peers : [...peers].reverse();
    for (const peer of order) samples.get(peer)!.push(await measure(peer));
  }
  return new Map(
    [...samples].map(([peer, values]) => [
      peer,
      { metrics: medianOfSamples(values), samples: values },
    ]),
  );
}

/**
 * Sets each row's ratio to its baseline's, on `key`: `costlier` says whether a larger value
 * is worse (latency, CPU) or better (throughput), so that ratio > 1 always means "costs more".
 *
 * Paired: each repetition's value is divided by the baseline's from the same repetition — the
 * nearest in time, so a slow spell of the machine that lands on both cancels out — and the
 * ratio is the median of those. Its spread is their median absolute deviation, relative to
 * it: 1.04× ±8% says nothing either way. The least and greatest of those ratios are kept too
 * (`ratioRange`): each lies above the true median ratio with probability ½, so with five
 * repetitions the true value is between them with 1 − 2 × ½⁵ ≈ 94% confidence, whatever the
 * noise's shape. Rows without repetitions fall back to the medians.
 *
 * `paired: false` is for figures whose noise only ever adds (instruction counts, where a GC or a
 * JIT compilation lands in some windows): the ratio is that of the rows' metrics (their least
 * disturbed windows), and the spread says how far the median window of either row lay above it.
 */
export function withRatios(
  rows: Row[],
  key: string,
  costlier: 'higher' | 'lower',
  { paired: pair = true }: { paired?: boolean } = {},
): Row[] {
  const oriented = (value: number, reference: number) =>
    costlier === 'higher' ? value / reference : reference / value;
  for (const row of rows) {
    if (row.baseline === undefined || row.absent) continue;
    const base = rows.find((other) => other.case === row.case && other.peer === row.baseline);
    const value = row.metrics[key];
    const reference = base?.metrics[key];
    if (value === undefined || reference === undefined || base?.absent) continue;
    if (!pair) {
      row.ratio = oriented(value, reference);
      row.ratioSpread = Math.max(excessOfMedian(row, key), excessOfMedian(base!, key));
      continue;
    }
    const paired = (row.samples ?? []).flatMap((sample, repetition) => {
      const own = sample[key];
      const theirs = base?.samples?.[repetition]?.[key];
      return own === undefined || theirs === undefined ? [] : [oriented(own, theirs)];
    });
    if (paired.length < 2) {
      row.ratio = oriented(value, reference);
      continue;
    }
    row.ratio = median(paired);
    row.ratioSpread = median(paired.map((ratio) => Math.abs(ratio - row.ratio!))) / row.ratio;
    row.ratioRange = [Math.min(...paired), Math.max(...paired)];
  }
  return rows;
}

/** How far the median of a row's samples lies above its metric, relative to the metric. */
function excessOfMedian(row: Row, key: string): number {
  const value = row.metrics[key]!;
  const values = (row.samples ?? []).flatMap((sample) => sample[key] ?? []);
  return values.length === 0 ? 0 : Math.abs(median(values) - value) / value;
}
