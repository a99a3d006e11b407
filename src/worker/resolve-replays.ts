import { dedupKey, type Impression } from "../impression/fields.ts";
import type { StoredIds } from "../storage/impressions.ts";
import type { CheckedSighting } from "./expired-claims.ts";

/** Which of these events the raw table already holds (`findStoredIds` bound to a ClickHouse client). */
export type StoredIdsLookup = (events: readonly Impression[]) => Promise<StoredIds>;

/**
 * The rows to insert: every new claim, then every replay and expired claim ClickHouse does not hold yet, each in
 * batch order (the insert's dedup token depends on the order). A replay's claim is this position's own, and an
 * expired claim's message may have been stored before its claim expired: only ClickHouse knows whether it was.
 * Duplicates are dropped. `stored` is what ClickHouse already held, by `dedupKey`.
 */
export async function resolveReplays(
  settled: readonly CheckedSighting[],
  findStoredIds: StoredIdsLookup,
): Promise<{
  rows: Impression[];
  stored: Set<string>;
  duplicates: number;
  replays: number;
  expired: number;
  alreadyStored: number;
  lookupReadRows: number;
}> {
  const fresh: Impression[] = [];
  const lookedUp: Impression[] = [];
  let replays = 0;
  for (const s of settled) {
    if (s.outcome === "new") fresh.push(s.event);
    else if (s.outcome !== "duplicate") {
      lookedUp.push(s.event);
      if (s.outcome === "replay") replays++;
    }
  }
  const stored = lookedUp.length > 0 ? await findStoredIds(lookedUp) : { ids: new Set<string>(), readRows: 0 };
  return {
    rows: [...fresh, ...lookedUp.filter((e) => !stored.ids.has(dedupKey(e)))],
    stored: stored.ids,
    duplicates: settled.length - fresh.length - lookedUp.length,
    replays,
    expired: lookedUp.length - replays,
    alreadyStored: stored.ids.size,
    lookupReadRows: stored.readRows,
  };
}
