import { describe, expect, it } from "vitest";
import { makeImpression } from "../../test/support/impressions.ts";
import {
  ClaimsExpiredError,
  type InsertRows,
  insertBeforeTakeover,
  lookupBeforeTakeover,
} from "./insert-before-takeover.ts";

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

describe("looking replays up before the claims can be taken over", () => {
  it("gives the lookup the time the insert may still wait to start", async () => {
    // Claimed 4 s ago: the insert must start within 15 - 5 - 4 = 6 s.
    const timeouts: number[] = [];
    const found = await lookupBeforeTakeover(
      async (timeoutMs) => {
        timeouts.push(timeoutMs);
        return "found";
      },
      { ...limits, claimedAt: 50_000, now: () => 54_000 },
    );
    expect({ found, timeouts }).toEqual({ found: "found", timeouts: [6_000] });
  });

  it("does not start a lookup once the insert could no longer end before a takeover", async () => {
    const started: number[] = [];
    const late = lookupBeforeTakeover(async (timeoutMs) => started.push(timeoutMs), {
      ...limits,
      claimedAt: 50_000,
      now: () => 60_000,
    });
    await expect(late).rejects.toThrow(ClaimsExpiredError);
    expect(started).toEqual([]);
  });

  it("reports a lookup that failed by outlasting its time as expired claims, and any other failure as it is", async () => {
    const clock = { t: 54_000 };
    const deadline = { ...limits, claimedAt: 50_000, now: () => clock.t };
    const aborted = lookupBeforeTakeover(async (timeoutMs) => {
      clock.t += timeoutMs;
      throw new Error("The user aborted a request.");
    }, deadline);
    await expect(aborted).rejects.toThrow(ClaimsExpiredError);
    await expect(aborted).rejects.toMatchObject({ cause: new Error("The user aborted a request.") });

    clock.t = 54_000;
    const refused = lookupBeforeTakeover(async () => {
      throw new Error("connection refused");
    }, deadline);
    await expect(refused).rejects.toThrow("connection refused");
  });
});
