import { randomBytes } from "node:crypto";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Config } from "../config.ts";
import type { Impression } from "../impression/schema.ts";
import { createClickHouse } from "../storage/clickhouse.ts";
import { migrate } from "../storage/migrations.ts";

/** A fresh, migrated database of its own, so test files can share one ClickHouse. */
export async function createTestDatabase(
  config: Config,
): Promise<{ clickhouse: ClickHouseClient; config: Config; drop(): Promise<void> }> {
  const database = `t_stats_${randomBytes(6).toString("hex")}`;
  const admin = createClickHouse(config);
  await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  const own = { ...config, CLICKHOUSE_DATABASE: database };
  const clickhouse = createClickHouse(own);
  await migrate(clickhouse, { retentionDays: own.RETENTION_DAYS });
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

/** Inserts into the raw table; the materialized view fills the per-minute rollup as in production. */
export async function insertImpressions(clickhouse: ClickHouseClient, rows: Impression[]): Promise<void> {
  await clickhouse.insert({
    table: "impressions",
    values: rows.map((r) => ({
      id: r.id,
      ts: new Date(r.ts).toISOString().replace("T", " ").replace("Z", ""),
      ad_id: r.adId,
      user_id: r.userId,
    })),
    format: "JSONEachRow",
  });
}
