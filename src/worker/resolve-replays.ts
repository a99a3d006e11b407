import type { Impression } from "../impression/schema.ts";
import type { SettledSighting } from "./defer-busy-partitions.ts";

/** Which of these events the raw table already holds (`findStoredIds` bound to a ClickHouse client). */
export type StoredIdsLookup = (events: readonly Impression[]) => Promise<Set<string>>;

/**
 * The rows to insert: every new claim, then every replay ClickHouse does not hold yet, each in batch order (the
 * insert's dedup token depends on the order). A replay's claim is this position's own: only ClickHouse knows
 * whether the earlier attempt stored it. Duplicates are dropped.
 */
export async function resolveReplays(
  settled: readonly SettledSighting[],
  findStoredIds: StoredIdsLookup,
): Promise<{ rows: Impression[]; duplicates: number; replays: number; replaysAlreadyStored: number }> {
  const fresh: Impression[] = [];
  const replayed: Impression[] = [];
  for (const s of settled) {
    if (s.outcome === "new") fresh.push(s.event);
    else if (s.outcome === "replay") replayed.push(s.event);
  }
  const stored = replayed.length > 0 ? await findStoredIds(replayed) : new Set<string>();
  return {
    rows: [...fresh, ...replayed.filter((e) => !stored.has(e.id))],
    duplicates: settled.length - fresh.length - replayed.length,
    replays: replayed.length,
    replaysAlreadyStored: stored.size,
  };
}
