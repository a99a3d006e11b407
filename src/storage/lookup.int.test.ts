import { beforeAll, describe, expect, it } from "vitest";
import { useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import type { Impression } from "../impression/schema.ts";
import { findStoredIds } from "./impressions.ts";

const db = useTestDatabase(() => testConfig());

const DAY_MS = 86_400_000;
const ROWS = 600_000;
/** 30 days of rows, one every STEP_MS back from now: 20,000 a day, a couple of granules (8,192 rows) each. */
const STEP_MS = (30 * DAY_MS) / ROWS;
const now = Date.now();
/** The stored row `bulk-<n>`, as a replayed message of it would carry it. */
const row = (n: number): Impression => ({ id: `bulk-${n}`, ts: now - n * STEP_MS, userId: "u", adId: "ad-bulk" });

beforeAll(async () => {
  await db.clickhouse.command({
    query: `INSERT INTO impressions (id, ts, ad_id, user_id)
      SELECT concat('bulk-', toString(number)), fromUnixTimestamp64Milli(toInt64({now:Int64} - number * {step:Int64}), 'UTC'),
        'ad-bulk', 'u'
      FROM numbers({rows:UInt64})`,
    query_params: { now, step: STEP_MS, rows: ROWS },
  });
});

describe("the replay lookup", () => {
  // The last hour's events (the first 800 rows), as a batch replayed after a crash would hold them.
  const fresh = Array.from({ length: 800 }, (_, n) => row(n));
  const monthOld = row(29 * 20_000 + 7);

  it("reads about as many rows for fresh events with a 29-day-old one among them as for the fresh ones alone", async () => {
    const alone = await findStoredIds(db.clickhouse, fresh);
    const mixed = await findStoredIds(db.clickhouse, [...fresh.slice(0, 400), monthOld, ...fresh.slice(400)]);
    expect(alone.ids.size).toBe(800);
    expect(mixed.ids.size).toBe(801);
    expect(alone.readRows).toBeGreaterThan(0);
    // The old event costs the granules around its own ts (one, or two across a part's edge), not the month.
    expect(mixed.readRows).toBeLessThanOrEqual(alone.readRows + 2 * 8192);
    // A range from the oldest ts to the newest would have read every row in between.
    expect(mixed.readRows * 20).toBeLessThan(29 * 20_000);
  });

  it("reads a granule or two per event whatever their spread, and finds only the rows with the event's ts", async () => {
    const spread = Array.from({ length: 30 }, (_, day) => row(day * 20_000 + 11));
    const found = await findStoredIds(db.clickhouse, spread);
    expect(found.ids.size).toBe(30);
    expect(found.readRows).toBeLessThanOrEqual(30 * 2 * 8192);
    // The same id with another ts is another message: a replay's row always has the message's own ts.
    const shifted = await findStoredIds(db.clickhouse, [{ ...row(5), ts: row(5).ts + 1 }]);
    expect(shifted.ids.size).toBe(0);
  });
});
