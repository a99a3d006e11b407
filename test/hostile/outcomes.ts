/**
 * How a request ended, as the sender saw it: `"<status> <error code>"` for an answer with a JSON error body
 * (`"413 too_many_events"`), `"<status>"` for a 2xx, `"<status> (not JSON)"` for any other answer, `"cut"` when
 * the server closed or reset the connection before answering, `"timeout"` when the sender gave up waiting.
 */
export type Outcome = string;

export const CUT: Outcome = "cut";
export const TIMEOUT: Outcome = "timeout";

/** The outcome of an answer with `status` and `body`. */
export function describeAnswer(status: number, body: string): Outcome {
  if (status >= 200 && status < 300) return String(status);
  const code = errorCode(body);
  return code === undefined ? `${status} (not JSON)` : `${status} ${code}`;
}

/** The `error` of a JSON error body `{error, message, ...}`, else undefined. */
function errorCode(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    const error = (parsed as { error?: unknown } | null)?.error;
    return typeof error === "string" ? error : undefined;
  } catch {
    return undefined;
  }
}

export const statusOf = (outcome: Outcome): number => Number.parseInt(outcome, 10);

export const is2xx = (outcome: Outcome): boolean => {
  const status = statusOf(outcome);
  return status >= 200 && status < 300;
};

/**
 * An attack request was stopped as the issue asks: a 4xx or 503 with a JSON error, or cut. A 2xx, another
 * 5xx, an answer that is not a JSON error, or no end at all is not.
 */
export function refused(outcome: Outcome): boolean {
  if (outcome === CUT) return true;
  const status = statusOf(outcome);
  const json = !outcome.endsWith("(not JSON)");
  return json && ((status >= 400 && status < 500) || status === 503);
}

/** Counts of outcomes, by outcome. */
export type Tally = Record<Outcome, number>;

export function count(tally: Tally, outcome: Outcome, n = 1): void {
  tally[outcome] = (tally[outcome] ?? 0) + n;
}

/** Both tallies added up. */
export function merge(a: Tally, b: Tally): Tally {
  const sum: Tally = { ...a };
  for (const [outcome, n] of Object.entries(b)) count(sum, outcome, n);
  return sum;
}

/** `"413 too_many_events ×4, cut ×2"`, most frequent first; `"none"` when empty. */
export function formatTally(tally: Tally): string {
  const entries = Object.entries(tally).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return entries.length === 0 ? "none" : entries.map(([outcome, n]) => `${outcome} ×${n}`).join(", ");
}
