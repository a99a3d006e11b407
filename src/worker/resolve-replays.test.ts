import { describe, expect, it } from "vitest";
import { makeImpression } from "../../test/support/impressions.ts";
import type { Impression } from "../impression/schema.ts";
import type { CheckedSighting } from "./expired-claims.ts";
import { resolveReplays, type StoredIdsLookup } from "./resolve-replays.ts";

const settled = (id: string, outcome: CheckedSighting["outcome"]): CheckedSighting => ({
  event: makeImpression("replays", { id }),
  position: { topic: "t", partition: 0, offset: 0n },
  acceptedAt: 0,
  outcome,
});

/** A raw table holding `storedIds`, remembering which ids each lookup asked about. */
function fakeStoredIds(storedIds: string[]) {
  const asked: string[][] = [];
  const lookup: StoredIdsLookup = async (events: readonly Impression[]) => {
    asked.push(events.map((e) => e.id));
    return { ids: new Set(events.map((e) => e.id).filter((id) => storedIds.includes(id))), readRows: 8192 };
  };
  return { lookup, asked };
}

describe("resolving replays", () => {
  it("inserts new ids, then the replays ClickHouse does not hold, each in batch order; drops duplicates", async () => {
    const { lookup, asked } = fakeStoredIds(["r2"]);
    const result = await resolveReplays(
      [
        settled("r1", "replay"),
        settled("n1", "new"),
        settled("d1", "duplicate"),
        settled("r2", "replay"),
        settled("n2", "new"),
        settled("r3", "replay"),
      ],
      lookup,
    );
    expect(asked).toEqual([["r1", "r2", "r3"]]);
    expect(result.rows.map((e) => e.id)).toEqual(["n1", "n2", "r1", "r3"]);
    expect(result).toMatchObject({ duplicates: 1, replays: 3, expired: 0, alreadyStored: 1, lookupReadRows: 8192 });
    expect(result.stored).toEqual(new Set(["r2"]));
  });

  it("looks expired claims up with the replays: one ClickHouse holds is not inserted again", async () => {
    const { lookup, asked } = fakeStoredIds(["x1"]);
    const result = await resolveReplays(
      [settled("x1", "expired"), settled("n1", "new"), settled("r1", "replay"), settled("x2", "expired")],
      lookup,
    );
    expect(asked).toEqual([["x1", "r1", "x2"]]);
    expect(result.rows.map((e) => e.id)).toEqual(["n1", "r1", "x2"]);
    expect(result).toMatchObject({ duplicates: 0, replays: 1, expired: 2, alreadyStored: 1 });
  });

  it("inserts nothing again when ClickHouse already holds every replay", async () => {
    const { lookup } = fakeStoredIds(["r1", "r2"]);
    const result = await resolveReplays([settled("r1", "replay"), settled("r2", "replay")], lookup);
    expect(result.rows).toEqual([]);
    expect(result).toMatchObject({ replays: 2, alreadyStored: 2 });
  });

  it("does not ask ClickHouse when the batch holds no replay and no expired claim", async () => {
    const { lookup, asked } = fakeStoredIds([]);
    const result = await resolveReplays([settled("n1", "new"), settled("d1", "duplicate")], lookup);
    expect(asked).toEqual([]);
    expect(result.rows.map((e) => e.id)).toEqual(["n1"]);
    expect(result).toMatchObject({ duplicates: 1, replays: 0, alreadyStored: 0, lookupReadRows: 0 });
  });
});
