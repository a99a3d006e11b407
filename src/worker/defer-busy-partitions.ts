import type { ClaimOutcome } from "../dedup/claims.ts";
import type { ClaimedSighting } from "./claim-ids.ts";
import type { PoisonMessage } from "./dead-letters.ts";

/** A claimed sighting this worker may act on now: no other worker may still be storing its partition. */
export type SettledSighting = ClaimedSighting & { outcome: Exclude<ClaimOutcome, "busy"> };

/**
 * A partition with an id another worker may still be storing waits whole, its poison included: committing past
 * that id could lose it. Returns those partitions and what the others may go on with.
 */
export function deferBusyPartitions(
  claimed: readonly ClaimedSighting[],
  poison: readonly PoisonMessage[],
): { deferred: number[]; settled: SettledSighting[]; poison: PoisonMessage[] } {
  const busy = new Set<number>();
  for (const s of claimed) if (s.outcome === "busy") busy.add(s.position.partition);
  return {
    deferred: [...busy],
    settled: claimed.filter((s): s is SettledSighting => !busy.has(s.position.partition)),
    poison: poison.filter((p) => !busy.has(p.position.partition)),
  };
}
