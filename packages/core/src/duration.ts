/**
 * Durations in configuration files, written with their unit — `250ms`, `5s`, `1.5m`, `1h` — so
 * that `timeout: 5` is never read as milliseconds by one reader and seconds by another.
 */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** `'1.5s'` → `1500`; `undefined` for anything that is not a number followed by a unit. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}
