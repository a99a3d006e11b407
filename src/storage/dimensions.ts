/**
 * The dimensions every stored row carries besides its ad and time: the event's kind and its traffic label. Both
 * are columns of the raw table and keys of the per-minute rollup (migration 3). Rows rolled up before that
 * migration hold '' in both, and they are what the columns' defaults say: impressions, unclassified.
 */
export const DEFAULT_KIND = "impression";
export const DEFAULT_TRAFFIC = "unclassified";

/** The values a stored row may hold for `value` in either table: the default also as the rollup's older ''. */
export function storedValues(values: readonly string[], defaultValue: string): string[] {
  return values.includes(defaultValue) ? [...values, ""] : [...values];
}
