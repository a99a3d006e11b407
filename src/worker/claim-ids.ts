import type { ClaimOutcome, ClaimStore } from "../dedup/claims.ts";
import { dedupKey } from "../impression/fields.ts";
import type { Sighting } from "./decode-batch.ts";

export type ClaimedSighting = Sighting & { outcome: ClaimOutcome };

/**
 * Claims each sighting's kind and id (`dedupKey`) for its position in Valkey. `claimedAt` is read before the claims are sent: the
 * claims' age, which bounds when an insert may start, is measured from no later than Valkey stamped them.
 */
export async function claimIds(
  sightings: readonly Sighting[],
  claims: Pick<ClaimStore, "claim">,
  now: () => number,
): Promise<{ claimedAt: number; claimed: ClaimedSighting[] }> {
  const claimedAt = now();
  const outcomes = await claims.claim(sightings.map((s) => ({ key: dedupKey(s.event), position: s.position })));
  if (outcomes.length !== sightings.length) {
    throw new Error(`the claim store answered ${outcomes.length} outcomes for ${sightings.length} ids`);
  }
  return { claimedAt, claimed: sightings.map((s, i) => ({ ...s, outcome: outcomes[i] as ClaimOutcome })) };
}
