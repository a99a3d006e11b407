import { describe, expect, it } from "vitest";
import { storedCounts, useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import type { Impression } from "../impression/schema.ts";
import { deduplicationToken, findStoredIds, storeImpressions } from "./impressions.ts";

const db = useTestDatabase(() => testConfig());

const now = Date.now();
const event = (id: string, ts = now, adId = "ad1"): Impression => ({ id, ts, userId: "u1", adId });

const counts = () => storedCounts(db.clickhouse);

describe("storing impressions", () => {
  it("a retried insert of the same rows counts once, in the raw table and in the rollup", async () => {
    const rows = [event("a1", now - 120_000), event("a2"), event("a3", now, "ad2")];
    await storeImpressions(db.clickhouse, rows, { timeoutMs: 10_000 });
    await storeImpressions(db.clickhouse, rows, { timeoutMs: 10_000 });
    expect(await counts()).toEqual({ raw: 3, rollup: 3 });
    await storeImpressions(db.clickhouse, [event("a4")], { timeoutMs: 10_000 });
    expect(await counts()).toEqual({ raw: 4, rollup: 4 });
  });

  it("keeps the millisecond of ts", async () => {
    const ts = now - 60_000 - (now % 1000) + 678;
    await storeImpressions(db.clickhouse, [event("ms1", ts)], { timeoutMs: 10_000 });
    const result = await db.clickhouse.query({
      query: "SELECT toUnixTimestamp64Milli(ts) AS ms FROM impressions WHERE id = 'ms1'",
      format: "JSONEachRow",
    });
    const rows = await result.json<{ ms: string | number }>();
    expect(rows.map((r) => Number(r.ms))).toEqual([ts]);
  });

  it("finds which ids are stored", async () => {
    await storeImpressions(db.clickhouse, [event("f1"), event("f2", now - 5_000)], { timeoutMs: 10_000 });
    const asked = [event("f1"), event("f2", now - 5_000), event("f3")];
    expect([...(await findStoredIds(db.clickhouse, asked)).ids].sort()).toEqual(["f1", "f2"]);
  });

  it("finds them among thousands of ids at once, whatever characters the ids hold", async () => {
    const odd = [event("o'1"), event("o\\2")];
    await storeImpressions(db.clickhouse, odd, { timeoutMs: 10_000 });
    const asked = [...odd, ...Array.from({ length: 12_000 }, (_, i) => event(`unknown-impression-id-${i}`))];
    expect([...(await findStoredIds(db.clickhouse, asked)).ids].sort()).toEqual(["o'1", "o\\2"]);
  });

  it("finds events by kind and id: an impression stored is not its viewable, whose key is `<kind>|<id>`", async () => {
    const { userId: _, ...anonymous } = event("k1");
    await storeImpressions(db.clickhouse, [anonymous, { ...event("k2"), kind: "click" }], { timeoutMs: 10_000 });
    const asked = [
      event("k1"),
      { ...event("k1"), kind: "viewable" as const },
      event("k2"),
      { ...event("k2"), kind: "click" as const },
    ];
    expect([...(await findStoredIds(db.clickhouse, asked)).ids].sort()).toEqual(["click|k2", "k1"]);
  });

  it("the token depends on the ids, their kinds and their order; an impression's is what it was before kinds", () => {
    expect(deduplicationToken([event("a"), event("b")])).toBe(deduplicationToken([event("a"), event("b")]));
    expect(deduplicationToken([event("a"), event("b")])).not.toBe(deduplicationToken([event("b"), event("a")]));
    expect(deduplicationToken([event("a")])).toBe(deduplicationToken([{ ...event("a"), kind: "impression" }]));
    expect(deduplicationToken([event("a")])).not.toBe(deduplicationToken([{ ...event("a"), kind: "viewable" }]));
    // SHA-256 of "a\n": the token an impression's batch had before kinds existed.
    expect(deduplicationToken([event("a")])).toBe("87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7");
  });
});
