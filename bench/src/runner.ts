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
 * The ratio's spread adds both rows' median absolute deviations over their repetitions,
 * relative to their medians: 1.04× ±8% says nothing either way.
 */
export function withRatios(rows: Row[], key: string, costlier: 'higher' | 'lower'): Row[] {
  for (const row of rows) {
    if (row.baseline === undefined || row.absent) continue;
    const base = rows.find((other) => other.case === row.case && other.peer === row.baseline);
    const value = row.metrics[key];
    const reference = base?.metrics[key];
    if (value === undefined || reference === undefined || base?.absent) continue;
    row.ratio = costlier === 'higher' ? value / reference : reference / value;
    row.ratioSpread = relativeDeviation(row, key) + relativeDeviation(base!, key);
  }
  return rows;
}

/** The median absolute deviation of the repetitions' `key`, relative to their median. */
function relativeDeviation(row: Row, key: string): number {
  const values = (row.samples ?? []).map((sample) => sample[key] ?? Number.NaN);
  if (values.length < 2) return 0;
  const middle = median(values);
  return median(values.map((value) => Math.abs(value - middle))) / middle;
}
