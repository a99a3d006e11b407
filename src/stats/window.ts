export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;

/**
 * The window (now − minutes, now] in epoch milliseconds, split so that whole hours are read from the
 * per-hour projection of the rollup, whole minutes from the per-minute rollup, and only the partial
 * minutes at its two edges from the raw table:
 *
 *   raw:    start < ts < fullFrom          (start excluded: an event exactly N minutes old is out)
 *   minute: fullFrom <= minute < hourFrom
 *   hour:   hourFrom <= hour < hourTo
 *   minute: hourTo <= minute < fullTo
 *   raw:    fullTo <= ts <= end            (end = now, included; future events are out)
 *
 * Every millisecond of a minute or hour read from a rollup lies inside the window. An empty level has
 * equal bounds. The raw edges span less than a minute each and the minute parts less than an hour, so
 * the rows read do not grow with the table, and grow with the window only by one row per ad and hour.
 */
export interface SplitWindow {
  start: number;
  end: number;
  fullFrom: number;
  fullTo: number;
  hourFrom: number;
  hourTo: number;
}

export function splitWindow(now: number, minutes: number): SplitWindow {
  const start = now - minutes * MINUTE_MS;
  const fullFrom = Math.floor(start / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  // The minute starting at m is whole when its last millisecond m + 59_999 <= now.
  const fullTo = Math.max(fullFrom, Math.floor((now + 1) / MINUTE_MS) * MINUTE_MS);
  const hourFrom = Math.min(Math.ceil(fullFrom / HOUR_MS) * HOUR_MS, fullTo);
  const hourTo = Math.max(hourFrom, Math.floor(fullTo / HOUR_MS) * HOUR_MS);
  return { start, end: now, fullFrom, fullTo, hourFrom, hourTo };
}
