/** One finished call, as the load client saw it. */
export interface Sample {
  /** `performance.now()` when it finished. */
  at: number;
  /** Who answered; undefined for a failed call (the client cannot tell where it failed). */
  backend: string | undefined;
  ms: number;
  ok: boolean;
}

/** One backend's row of the table. */
export interface Row {
  backend: string;
  state: string;
  /** Of the calls answered in the window, the share this backend answered, %. */
  share: number;
  calls: number;
  p50: number;
  p99: number;
}

/** The table at one moment: the last `windowMs` of calls. */
export interface Snapshot {
  seconds: number;
  phase: string;
  /** Seconds since the phase began. */
  phaseAge: number;
  calls: number;
  failed: number;
  rows: Row[];
}

/** The calls of a load run and the table of their last few seconds. */
export class LoadStats {
  private readonly samples: Sample[] = [];

  constructor(
    private readonly backends: readonly string[],
    private readonly windowMs: number,
  ) {}

  record(sample: Sample): void {
    this.samples.push(sample);
  }

  /** Every call so far. */
  all(): readonly Sample[] {
    return this.samples;
  }

  snapshot(
    now: number,
    start: number,
    phase: { name: string; since: number },
    state: (backend: string) => string,
  ): Snapshot {
    const recent = this.samples.filter((s) => s.at > now - this.windowMs && s.at <= now);
    const answered = recent.filter((s) => s.ok);
    const rows = this.backends.map((backend) => {
      const mine = answered
        .filter((s) => s.backend === backend)
        .map((s) => s.ms)
        .sort((a, b) => a - b);
      return {
        backend,
        state: state(backend),
        share: answered.length === 0 ? 0 : (100 * mine.length) / answered.length,
        calls: mine.length,
        p50: percentile(mine, 0.5),
        p99: percentile(mine, 0.99),
      };
    });
    return {
      seconds: (now - start) / 1000,
      phase: phase.name,
      phaseAge: (now - phase.since) / 1000,
      calls: recent.length,
      failed: recent.length - answered.length,
      rows,
    };
  }
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

const ms = (value: number) => (Number.isNaN(value) ? '—' : `${value.toFixed(1)} ms`);

/**
 * The table as lines of text. The header line is what a test reads the phase from:
 * `t=8.0s  phase=slow (+2.0s)  calls=412  failed=0  (last 2 s)`.
 */
export function renderSnapshot(snapshot: Snapshot, windowMs: number): string[] {
  const header =
    `t=${snapshot.seconds.toFixed(1)}s  phase=${snapshot.phase} (+${snapshot.phaseAge.toFixed(1)}s)` +
    `  calls=${snapshot.calls}  failed=${snapshot.failed}  (last ${windowMs / 1000} s)`;
  const lines = [
    header,
    `  ${'backend'.padEnd(10)} ${'state'.padEnd(8)} ${'share'.padStart(6)} ${'calls'.padStart(6)} ${'p50'.padStart(10)} ${'p99'.padStart(10)}`,
  ];
  for (const row of snapshot.rows) {
    lines.push(
      `  ${row.backend.padEnd(10)} ${row.state.padEnd(8)} ${`${row.share.toFixed(1)}%`.padStart(6)} ${String(row.calls).padStart(6)} ${ms(row.p50).padStart(10)} ${ms(row.p99).padStart(10)}`,
    );
  }
  return lines;
}

/** Parses the lines {@link renderSnapshot} printed (for tests, and for anyone piping the demo). */
export function parseSnapshots(text: string): Snapshot[] {
  const snapshots: Snapshot[] = [];
  const header = /^t=([\d.]+)s {2}phase=(\S+) \(\+([\d.]+)s\) {2}calls=(\d+) {2}failed=(\d+)/;
  const row = /^ {2}(\S+)\s+(\S+)\s+([\d.]+)%\s+(\d+)\s+(\S+)(?: ms)?\s+(\S+)(?: ms)?$/;
  let current: Snapshot | undefined;
  for (const line of text.split('\n')) {
    const h = header.exec(line);
    if (h !== null) {
      current = {
        seconds: Number(h[1]),
        phase: h[2] as string,
        phaseAge: Number(h[3]),
        calls: Number(h[4]),
        failed: Number(h[5]),
        rows: [],
      };
      snapshots.push(current);
      continue;
    }
    const r = row.exec(line);
    if (r !== null && current !== undefined && r[1] !== 'backend') {
      current.rows.push({
        backend: r[1] as string,
        state: r[2] as string,
        share: Number(r[3]),
        calls: Number(r[4]),
        p50: Number(r[5]),
        p99: Number(r[6]),
      });
    }
  }
  return snapshots;
}
