// A strict parser for the Prometheus text exposition format (0.0.4), for asserting on real
// scrapes. parse-prometheus-text-format, the usual npm choice, folds every labelled histogram
// into one unlabelled series, so it can't check per-method histograms.

export type Labels = Record<string, string>;

export interface Sample {
  labels: Labels;
  value: number;
}

export interface HistogramSeries {
  labels: Labels;
  /** Cumulative counts by upper bound (`le`), in exposition order, ending with +Inf. */
  buckets: [number, number][];
  sum: number;
  count: number;
}

export interface MetricFamily {
  name: string;
  type: string;
  help: string;
  unit: string | undefined;
  samples: Sample[];
  histograms: HistogramSeries[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`bad sample value in: ${line}`);
  return value;
}

function parseLabels(text: string, line: string): Labels {
  const labels: Labels = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const match = LABEL.exec(text);
    if (match === null) throw new Error(`bad labels in: ${line}`);
    const [, name, raw] = match as unknown as [string, string, string];
    if (name in labels) throw new Error(`duplicate label ${name} in: ${line}`);
    labels[name] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

function seriesKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Parses a scrape; throws on anything malformed or inconsistent (e.g. non-cumulative buckets). */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string): MetricFamily => {
    let found = families.get(name);
    if (found === undefined) {
      found = { name, type: 'untyped', help: '', unit: undefined, samples: [], histograms: [] };
      families.set(name, found);
    }
    return found;
  };
  const histogramSeries = new Map<string, HistogramSeries>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE|UNIT) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (meta === null) continue;
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      const target = family(name);
      if (kind === 'HELP') target.help = rest;
      else if (kind === 'UNIT') target.unit = rest;
      else target.type = rest;
      continue;
    }
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`bad sample line: ${line}`);
    const [, name, labelText = '', valueText] = match as unknown as [
      string,
      string,
      string,
      string,
    ];
    const labels = parseLabels(labelText, line);
    const value = parseValue(valueText, line);
    const base = name.replace(/_(bucket|sum|count)$/, '');
    if (base !== name && families.get(base)?.type === 'histogram') {
      const { le, ...rest } = labels;
      const key = `${base} ${seriesKey(rest)}`;
      let series = histogramSeries.get(key);
      if (series === undefined) {
        series = { labels: rest, buckets: [], sum: Number.NaN, count: Number.NaN };
        histogramSeries.set(key, series);
        family(base).histograms.push(series);
      }
      if (name.endsWith('_bucket')) {
        if (le === undefined) throw new Error(`bucket without le: ${line}`);
        series.buckets.push([parseValue(le, line), value]);
      } else if (name.endsWith('_sum')) series.sum = value;
      else series.count = value;
      continue;
    }
    family(name).samples.push({ labels, value });
  }
  for (const series of histogramSeries.values()) {
    const counts = series.buckets.map(([, count]) => count);
    const bounds = series.buckets.map(([bound]) => bound);
    if (bounds.at(-1) !== Number.POSITIVE_INFINITY)
      throw new Error('histogram without +Inf bucket');
    if (counts.some((count, i) => i > 0 && count < (counts[i - 1] as number))) {
      throw new Error('histogram buckets are not cumulative');
    }
    if (counts.at(-1) !== series.count) throw new Error('+Inf bucket differs from _count');
  }
  return families;
}

/** The one series of `family` whose labels include all of `labels`; throws unless exactly one. */
export function seriesWith<T extends { labels: Labels }>(series: T[], labels: Labels): T {
  const found = series.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) {
    throw new Error(`${found.length} series match ${JSON.stringify(labels)}`);
  }
  return found[0] as T;
}
