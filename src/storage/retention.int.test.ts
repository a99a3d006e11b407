import { expect, it } from "vitest";
import { insertImpressions, storedCounts, useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { waitFor } from "../../test/support/wait.ts";
import { applyRetention } from "./retention.ts";

const DAY_MS = 86_400_000;
const db = useTestDatabase(() => testConfig({ RETENTION_DAYS: "30" }));

/** Rows left in each table once ClickHouse has applied the TTL to everything stored. */
async function rowsAfterTtl(): Promise<{ raw: number; rollup: number }> {
  // A TTL change starts a background mutation that re-applies it to stored parts: let it finish first.
  await waitFor(
    "the TTL mutations to finish",
    20_000,
    async () => {
      const running = await db.clickhouse.query({
        query: "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND NOT is_done",
        format: "JSONCompactEachRow",
      });
      const [[count] = ["0"]] = await running.json<[string]>();
      return Number(count) === 0 ? true : undefined;
    },
    100,
  );
  for (const table of ["impressions", "impressions_per_minute"]) {
    await db.clickhouse.command({ query: `OPTIMIZE TABLE ${table} FINAL` });
  }
  return storedCounts(db.clickhouse);
}

it("a changed RETENTION_DAYS changes how long ClickHouse keeps rows, in both tables", async () => {
  expect(await applyRetention(db.clickhouse, 30)).toEqual([]);
  expect(await applyRetention(db.clickhouse, 60)).toEqual(["impressions", "impressions_per_minute"]);
  expect(await applyRetention(db.clickhouse, 60)).toEqual([]);

  // 40 days old: past the first retention, within the new one.
  await insertImpressions(db.clickhouse, [{ id: "old-1", ts: Date.now() - 40 * DAY_MS, adId: "ad-1", userId: "u-1" }]);
  expect(await rowsAfterTtl()).toEqual({ raw: 1, rollup: 1 });

  expect(await applyRetention(db.clickhouse, 30)).toEqual(["impressions", "impressions_per_minute"]);
  expect(await rowsAfterTtl()).toEqual({ raw: 0, rollup: 0 });
});
