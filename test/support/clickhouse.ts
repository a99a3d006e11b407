import { randomBytes } from "node:crypto";
import type { ClickHouseClient } from "@clickhouse/client";
import { beforeAll } from "vitest";
import type { Config } from "../../src/config.ts";
import type { Impression } from "../../src/impression/schema.ts";
import { provisionStorage } from "../../src/provision.ts";
import { createClickHouse } from "../../src/storage/clickhouse.ts";
import { impressionRow } from "../../src/storage/impressions.ts";

/** A fresh database of its own, provisioned as in production, so test files can share one ClickHouse. */
export async function createTestDatabase(
  config: Config,
): Promise<{ clickhouse: ClickHouseClient; config: Config; drop(): Promise<void> }> {
  const database = `t_${randomBytes(6).toString("hex")}`;
  const own = { ...config, CLICKHOUSE_DATABASE: database };
  await provisionStorage(own);
  const admin = createClickHouse(config);
  const clickhouse = createClickHouse(own);
  return {
    clickhouse,
    config: own,
    async drop() {
      await clickhouse.close();
      await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await admin.close();
    },
  };
}

export interface TestDatabase {
  readonly clickhouse: ClickHouseClient;
  readonly config: Config;
}

/**
 * A fresh database for the calling test file, created before its tests and dropped after them, so no file
 * leaves one behind. Call it at the file's top level; the handle works in hooks and tests registered after it.
 */
export function useTestDatabase(config: () => Config): TestDatabase {
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  beforeAll(async () => {
    db = await createTestDatabase(config());
    return () => db?.drop();
  });
  const created = () => {
    if (!db) throw new Error("useTestDatabase: the database is created in beforeAll");
    return db;
  };
  return {
    get clickhouse() {
      return created().clickhouse;
    },
    get config() {
      return created().config;
    },
  };
}

/** Inserts into the raw table; the materialized view fills the per-minute rollup as in production. */
export async function insertImpressions(clickhouse: ClickHouseClient, rows: Impression[]): Promise<void> {
  await clickhouse.insert({
    table: "impressions",
    values: rows.map(impressionRow),
    format: "JSONEachRow",
  });
}

/** Rows in the raw table and impressions in the rollup: both must agree after any insert. */
export async function storedCounts(clickhouse: ClickHouseClient): Promise<{ raw: number; rollup: number }> {
  const result = await clickhouse.query({
    query:
      "SELECT (SELECT count() FROM impressions) AS raw, (SELECT sum(impressions) FROM impressions_per_minute) AS rollup",
    format: "JSONEachRow",
  });
  const [row] = await result.json<{ raw: string; rollup: string }>();
  return { raw: Number(row?.raw), rollup: Number(row?.rollup) };
}
