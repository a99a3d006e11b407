/** Nearest-rank percentile of an ascending array, p in (0, 1]; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}
