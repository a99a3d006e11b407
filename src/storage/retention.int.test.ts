import { spawnSync } from "node:child_process";
import { expect, inject, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { startApi } from "../../test/support/api-process.ts";
import { insertImpressions, storedCounts, useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { waitFor } from "../../test/support/wait.ts";
import { provisionStorage } from "../provision.ts";
import { applyRetention, retentionDifferences } from "./retention.ts";

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

/** Each table's TTL in days, read from ClickHouse's own description of it. */
async function ttlDays(): Promise<Record<string, number>> {
  const result = await db.clickhouse.query({
    query: `SELECT name, engine_full FROM system.tables
      WHERE database = currentDatabase() AND name IN ('impressions', 'impressions_per_minute') ORDER BY name`,
    format: "JSONEachRow",
  });
  const rows = await result.json<{ name: string; engine_full: string }>();
  return Object.fromEntries(rows.map((r) => [r.name, Number(/toIntervalDay\((\d+)\)/.exec(r.engine_full)?.[1])]));
}

/** `npm run retention` (the real command) on the test database, with RETENTION_DAYS=days. */
function retentionCommand(days: number) {
  const run = spawnSync(process.execPath, ["src/storage/retention-cli.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...inject("stackEnv"),
      CLICKHOUSE_DATABASE: db.config.CLICKHOUSE_DATABASE,
      RETENTION_DAYS: String(days),
    },
    encoding: "utf8",
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

it("a changed RETENTION_DAYS applied changes how long ClickHouse keeps rows, in both tables", async () => {
  expect(await applyRetention(db.clickhouse, 30)).toEqual([]);
  expect(await applyRetention(db.clickhouse, 60)).toEqual([
    { table: "impressions", days: 30, configured: 60 },
    { table: "impressions_per_minute", days: 30, configured: 60 },
  ]);
  expect(await applyRetention(db.clickhouse, 60)).toEqual([]);

  // 40 days old: past the first retention, within the new one.
  await insertImpressions(db.clickhouse, [{ id: "old-1", ts: Date.now() - 40 * DAY_MS, adId: "ad-1", userId: "u-1" }]);
  expect(await rowsAfterTtl()).toEqual({ raw: 1, rollup: 1 });

  expect(await applyRetention(db.clickhouse, 30)).toHaveLength(2);
  expect(await rowsAfterTtl()).toEqual({ raw: 0, rollup: 0 });
});

it("provisioning (each worker's start) with another RETENTION_DAYS leaves the TTL as it is, and reports it", async () => {
  expect(await ttlDays()).toEqual({ impressions: 30, impressions_per_minute: 30 });
  expect(await provisionStorage({ ...db.config, RETENTION_DAYS: 7 })).toEqual([
    { table: "impressions", days: 30, configured: 7 },
    { table: "impressions_per_minute", days: 30, configured: 7 },
  ]);
  expect(await ttlDays()).toEqual({ impressions: 30, impressions_per_minute: 30 });
  expect(await provisionStorage({ ...db.config, RETENTION_DAYS: 30 })).toEqual([]);
  expect(await retentionDifferences(db.clickhouse, 30)).toEqual([]);
});

it("npm run retention applies RETENTION_DAYS and prints what it changed", async () => {
  const longer = retentionCommand(45);
  expect(longer).toMatchObject({ code: 0, stderr: "" });
  expect(longer.stdout).toContain("impressions: TTL 30 days -> 45 days");
  expect(longer.stdout).toContain("impressions_per_minute: TTL 30 days -> 45 days");
  expect(await ttlDays()).toEqual({ impressions: 45, impressions_per_minute: 45 });

  const again = retentionCommand(45);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain("already keep rows 45 days: nothing changed");

  const shorter = retentionCommand(30);
  expect(shorter.code).toBe(0);
  expect(shorter.stdout).toContain("impressions: TTL 45 days -> 30 days");
  expect(shorter.stdout).toMatch(/older than 30 days are deleted/);
  expect(await ttlDays()).toEqual({ impressions: 30, impressions_per_minute: 30 });
});

it("an API started with another RETENTION_DAYS warns, naming both retentions and the command", async () => {
  const api = await startApi(db.config, { RETENTION_DAYS: "7", API_ROLE: "query", AUTH: "off" });
  try {
    const line = await waitFor("the API's retention warning", 10_000, () =>
      api
        .output()
        .split("\n")
        .find((l) => l.includes('"table":"impressions"')),
    );
    const warning = JSON.parse(line) as { level: number; msg: string };
    expect(warning).toMatchObject({ level: 40, days: 30, configured: 7 });
    expect(warning.msg).toBe(
      "table impressions has a TTL of 30 days, but RETENTION_DAYS=7; left unchanged " +
        "(run `npm run retention` with RETENTION_DAYS=7 to apply it, or set RETENTION_DAYS to match)",
    );
    expect(await ttlDays()).toEqual({ impressions: 30, impressions_per_minute: 30 });
  } finally {
    api.kill();
  }
});
