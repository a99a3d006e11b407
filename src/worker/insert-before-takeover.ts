import type { Impression } from "../impression/schema.ts";

/** The claims of this batch became too old to insert safely: the batch is retried and claims them again. */
export class ClaimsExpiredError extends Error {
  override name = "ClaimsExpiredError";
  readonly code = "CLAIMS_EXPIRED";
}

export interface TakeoverDeadline {
  /** When the claims were sent, on the `now` clock. */
  claimedAt: number;
  /** A monotonic clock in milliseconds: workers' wall clocks need not agree, and may jump. */
  now: () => number;
  /** Must match the claim store's takeover time: past it, another worker may take the claims over. */
  takeoverAfterMs: number;
  /** Longest an insert may take; an insert is only started if it ends before the claims can be taken over. */
  insertTimeoutMs: number;
}

/** `storeImpressions` bound to a ClickHouse client: inserts the rows, aborting after `timeoutMs`. */
export type InsertRows = (rows: readonly Impression[], options: { timeoutMs: number }) => Promise<void>;

/** How long the insert may still wait to start: it must end, given its full timeout, before a takeover. */
function timeLeftToInsert({ claimedAt, now, takeoverAfterMs, insertTimeoutMs }: TakeoverDeadline): number {
  return takeoverAfterMs - insertTimeoutMs - (now() - claimedAt);
}

/** Inserts the rows only if the insert, given its full timeout, ends before another worker may take the claims over. */
export async function insertBeforeTakeover(
  rows: readonly Impression[],
  insert: InsertRows,
  deadline: TakeoverDeadline,
): Promise<void> {
  if (timeLeftToInsert(deadline) <= 0) {
    throw new ClaimsExpiredError("claims are too old to insert before another worker may take them over");
  }
  await insert(rows, { timeoutMs: deadline.insertTimeoutMs });
}

/**
 * Runs the ClickHouse lookup that comes before the insert within the time the insert may still wait: a lookup that
 * would end later is aborted (it could only lead to ClaimsExpiredError), and so reported.
 */
export async function lookupBeforeTakeover<T>(
  lookup: (timeoutMs: number) => Promise<T>,
  deadline: TakeoverDeadline,
): Promise<T> {
  // Whole milliseconds, as timers take them.
  const left = Math.floor(timeLeftToInsert(deadline));
  if (left <= 0) throw new ClaimsExpiredError("claims are too old to look the replays up before a takeover");
  try {
    return await lookup(left);
  } catch (error) {
    if (timeLeftToInsert(deadline) > 0) throw error;
    throw new ClaimsExpiredError("the replay lookup outlasted the time the claims leave before the insert", {
      cause: error,
    });
  }
}
