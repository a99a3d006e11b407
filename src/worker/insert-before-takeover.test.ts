import { describe, expect, it } from "vitest";
import { makeImpression } from "../../test/support/impressions.ts";
import { ClaimsExpiredError, type InsertRows, insertBeforeTakeover } from "./insert-before-takeover.ts";

const rows = [makeImpression("insert"), makeImpression("insert")];
const limits = { takeoverAfterMs: 15_000, insertTimeoutMs: 5_000 };

/** A ClickHouse insert that records each call. */
function fakeInsert() {
  const calls: { ids: string[]; timeoutMs: number }[] = [];
  const insert: InsertRows = async (inserted, { timeoutMs }) => {
    calls.push({ ids: inserted.map((e) => e.id), timeoutMs });
  };
  return { insert, calls };
}

describe("inserting before the claims can be taken over", () => {
  it("inserts the rows, with the insert timeout, when the insert would end before the takeover time", async () => {
    const { insert, calls } = fakeInsert();
    // Claimed 9,999 ms ago: a 5 s insert ends 1 ms before another worker may take over.
    await insertBeforeTakeover(rows, insert, { ...limits, claimedAt: 50_000, now: () => 59_999 });
    expect(calls).toEqual([{ ids: rows.map((e) => e.id), timeoutMs: 5_000 }]);
  });

  it("refuses to start an insert that could still be running when another worker may take over", async () => {
    const { insert, calls } = fakeInsert();
    const late = insertBeforeTakeover(rows, insert, { ...limits, claimedAt: 50_000, now: () => 60_000 });
    await expect(late).rejects.toThrow(ClaimsExpiredError);
    await expect(late).rejects.toMatchObject({ code: "CLAIMS_EXPIRED" });
    expect(calls).toEqual([]);
  });
});
