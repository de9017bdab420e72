/** A goal from another issue, set beside what was measured. */
export interface Target {
  /** The goal and where it comes from, e.g. "≤ 5% over bare nice-grpc (issue 3)". */
  text: string;
  /** The figure compared with the goal, as shown, e.g. "1.03×" or "+0.4 ms". */
  measured: string;
  /**
   * Undefined when the figures it needs are missing (a peer absent), or when the measurement's
   * noise leaves the goal on both sides (`withinNoise`).
   */
  met: boolean | undefined;
  /** The repetitions' ratios lie on both sides of the goal: they cannot decide it. */
  withinNoise?: boolean;
}

/** One peer (or variant) in one case of a scenario. */
export interface Row {
  /** What was measured, e.g. "unary, 64 in flight". */
  case: string;
  peer: string;
  /** Medians over the repetitions; empty when the peer is absent. */
  metrics: Record<string, number>;
  /** Each repetition's figures (in the JSON, for whoever wants to see the noise). */
  samples?: Record<string, number>[];
  /** The peer whose figures `ratio` divides by. */
  baseline?: string;
  /** This row's key metric over the baseline's, oriented so that > 1 means costlier. */
  ratio?: number;
  /** How far the ratio could move with the repetitions' scatter (see `withRatios`). */
  ratioSpread?: number;
  /**
   * The least and the greatest of the paired ratios (see `withRatios`): with five repetitions
   * the median ratio's true value lies between them with 94% confidence.
   */
  ratioRange?: [number, number];
  /** Why there are no figures: not installed (with the command), not built yet. */
  absent?: string;
  target?: Target;
}

/** One peer's figures from {@link interleaved}: medians, and every repetition's. */
export interface Measured {
  metrics: Record<string, number>;
  samples: Record<string, number>[];
}

/** A column of a scenario's table: which metric, how it is labelled and rounded. */
export interface Column {
  key: string;
  label: string;
  digits: number;
}

export interface ScenarioResult {
  id: string;
  title: string;
  /** How it was measured, a few sentences. */
  method: string;
  columns: Column[];
  /** What `Row.ratio` means here; no ratio column without it. */
  ratioLabel?: string;
  rows: Row[];
  /** Observations the reader needs (generator capacity, errors seen, peers absent). */
  notes: string[];
  /** Set when the scenario could not finish: the error, with no rows. */
  failed?: string;
}

/** How long and how often to measure. */
/**
 * The share of a scenario's warm-up calls a quick run makes: its figures mean nothing, so its
 * warm-up only has to touch every path (ten times as many calls made the middleware scenario's
 * quick run 121 s instead of 64 s).
 */
export const QUICK_WARM_UP_SCALE = 0.005;

export interface Settings {
  quick: boolean;
  /** Repetitions of each measurement; medians are reported. */
  repetitions: number;
  /** Scales every measurement window; 1 for the full run. */
  timeScale: number;
  /**
   * Middleware stacks to measure, as parts of their names (any matches), each with its
   * baseline; all of them when unset.
   */
  stacks?: readonly string[];
  log(message: string): void;
}

export interface Scenario {
  id: string;
  title: string;
  run(settings: Settings): Promise<ScenarioResult>;
}
