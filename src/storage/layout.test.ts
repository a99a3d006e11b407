import { describe, expect, it } from "vitest";
import { createDatabaseStatement, ONE_SERVER, schemaMigrationsStatement } from "./layout.ts";
import { migrationStatements, migrations } from "./migrations.ts";
import { RETAINED_TABLES, retentionStatements } from "./retention.ts";

/** The released migrations' statements on one server (RETENTION_DAYS=30): a released migration is never edited. */
const RELEASED: Record<number, string[]> = {
  1: [
    `CREATE TABLE IF NOT EXISTS impressions (
        id String,
        ts DateTime64(3, 'UTC'),
        ad_id LowCardinality(String),
        user_id String,
        INDEX id_bloom id TYPE bloom_filter(0.01) GRANULARITY 4
      ) ENGINE = MergeTree
      PARTITION BY toDate(ts)
      ORDER BY (ts, ad_id)
      TTL toDateTime(ts) + INTERVAL 30 DAY
      SETTINGS non_replicated_deduplication_window = 10000`,
    `CREATE TABLE IF NOT EXISTS impressions_per_minute (
        minute DateTime('UTC'),
        ad_id LowCardinality(String),
        impressions UInt64
      ) ENGINE = SummingMergeTree(impressions)
      PARTITION BY toDate(minute)
      ORDER BY (minute, ad_id)
      TTL minute + INTERVAL 30 DAY
      SETTINGS non_replicated_deduplication_window = 10000`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS impressions_per_minute_mv TO impressions_per_minute AS
        SELECT toStartOfMinute(ts) AS minute, ad_id, count() AS impressions
        FROM impressions GROUP BY minute, ad_id`,
  ],
  2: [
    `ALTER TABLE impressions_per_minute MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'`,
    `ALTER TABLE impressions_per_minute ADD PROJECTION IF NOT EXISTS per_hour
        (SELECT toStartOfHour(minute), ad_id, sum(impressions) GROUP BY toStartOfHour(minute), ad_id)`,
    `ALTER TABLE impressions_per_minute MATERIALIZE PROJECTION per_hour`,
  ],
};

describe("one server", () => {
  it("runs every migration's statements byte for byte as written", () => {
    for (const m of migrations) {
      expect(migrationStatements(m, { retentionDays: 30 }, ONE_SERVER)).toEqual(m.statements({ retentionDays: 30 }));
    }
  });

  it("runs the released migrations as they were released", () => {
    const released = migrations.filter((m) => m.version in RELEASED);
    expect(Object.fromEntries(released.map((m) => [m.version, m.statements({ retentionDays: 30 })]))).toEqual(RELEASED);
  });

  it("creates the database, the migrations record and the TTL changes as before", () => {
    expect(createDatabaseStatement(ONE_SERVER)).toBe("CREATE DATABASE IF NOT EXISTS {database:Identifier}");
    expect(schemaMigrationsStatement(ONE_SERVER)).toBe(
      `CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now())
      ENGINE = ReplacingMergeTree ORDER BY version`,
    );
    expect(RETAINED_TABLES.flatMap((table) => retentionStatements(ONE_SERVER, table, 60))).toEqual([
      "ALTER TABLE impressions MODIFY TTL toDateTime(ts) + INTERVAL 60 DAY",
      "ALTER TABLE impressions_per_minute MODIFY TTL minute + INTERVAL 60 DAY",
    ]);
  });
});
