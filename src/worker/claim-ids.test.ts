import { describe, expect, it } from "vitest";
import { makeImpression } from "../../test/support/impressions.ts";
import type { ClaimOutcome, ClaimStore } from "../dedup/claims.ts";
import { claimIds } from "./claim-ids.ts";
import type { Sighting } from "./decode-batch.ts";

const sighting = (id: string, offset: bigint): Sighting => ({
  event: makeImpression("claim", { id }),
  position: { topic: "t", partition: 0, offset },
  acceptedAt: 0,
});

/** Answers from a table of outcomes by id, taking `tookMs` on the test's clock, and remembers what it was asked. */
function fakeClaimStore(outcomes: Record<string, ClaimOutcome>, clock: { t: number }, tookMs = 0) {
  const asked: { id: string; offset: bigint }[] = [];
  const store: Pick<ClaimStore, "claim"> = {
    claim: async (items) => {
      asked.push(...items.map((i) => ({ id: i.key, offset: i.position.offset })));
      clock.t += tookMs;
      return items.map((i) => outcomes[i.key] ?? "new");
    },
  };
  return { store, asked };
}

describe("claiming the ids of a batch", () => {
  it("claims each id for its own position and pairs every sighting with its outcome", async () => {
    const clock = { t: 0 };
    const { store, asked } = fakeClaimStore({ a: "new", b: "duplicate", c: "replay", d: "busy" }, clock);
    const sightings = [sighting("a", 1n), sighting("b", 2n), sighting("c", 3n), sighting("d", 4n)];

    const { claimed } = await claimIds(sightings, store, () => clock.t);

    expect(asked).toEqual([
      { id: "a", offset: 1n },
      { id: "b", offset: 2n },
      { id: "c", offset: 3n },
      { id: "d", offset: 4n },
    ]);
    expect(claimed.map((s) => [s.event.id, s.position.offset, s.outcome])).toEqual([
      ["a", 1n, "new"],
      ["b", 2n, "duplicate"],
      ["c", 3n, "replay"],
      ["d", 4n, "busy"],
    ]);
  });

  it("dates the claims from before they were sent, so a slow claim counts against the insert deadline", async () => {
    const clock = { t: 1_000 };
    const { store } = fakeClaimStore({}, clock, 3_000);
    const { claimedAt } = await claimIds([sighting("a", 1n)], store, () => clock.t);
    expect(claimedAt).toBe(1_000);
  });

  it("rejects the batch when the store does not answer for every id", async () => {
    const store: Pick<ClaimStore, "claim"> = { claim: async () => ["new"] };
    await expect(claimIds([sighting("a", 1n), sighting("b", 2n)], store, () => 0)).rejects.toThrow(
      "the claim store answered 1 outcomes for 2 ids",
    );
  });
});
