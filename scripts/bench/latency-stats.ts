/** `summarize`: count, mean, p50, p90, p99 and max of a list of samples (milliseconds, usually). */

export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of sorted samples (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** NaN figures when there is no sample, so a missing measurement shows up as such rather than as 0. */
export function summarize(samples: readonly number[]): Summary {
  const sorted = Float64Array.from(samples).sort();
  const list = Array.from(sorted);
  let sum = 0;
  for (const value of list) sum += value;
  return {
    count: list.length,
    mean: list.length === 0 ? Number.NaN : sum / list.length,
    p50: percentile(list, 50),
    p90: percentile(list, 90),
    p99: percentile(list, 99),
    max: list.length === 0 ? Number.NaN : list[list.length - 1]!,
  };
}

/** Rounds every number of a summary to `digits` decimals (for JSON and the table). */
export function rounded(summary: Summary, digits = 2): Summary {
  const f = 10 ** digits;
  const r = (v: number) => (Number.isFinite(v) ? Math.round(v * f) / f : v);
  return { count: summary.count, mean: r(summary.mean), p50: r(summary.p50), p90: r(summary.p90), p99: r(summary.p99), max: r(summary.max) };
}
