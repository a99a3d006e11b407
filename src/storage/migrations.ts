import type { ClickHouseClient } from "@clickhouse/client";
import { layoutStatements, ONE_SERVER, type StorageLayout, schemaMigrationsStatement } from "./layout.ts";

export interface MigrationSettings {
  retentionDays: number;
}

export interface Migration {
  version: number;
  name: string;
  statements: (s: MigrationSettings) => string[];
}

/**
 * Versioned, append-only list: a released migration is never edited, a change is a new entry.
 * Dedup windows on BOTH the raw table and the rollup target: a retried insert that the raw table
 * drops still reaches the materialized view, whose target must drop it too.
 */
export const migrations: Migration[] = [
  {
    version: 1,
    name: "raw impressions and per-minute rollup",
    statements: ({ retentionDays }) => [
      `CREATE TABLE IF NOT EXISTS impressions (
        id String,
        ts DateTime64(3, 'UTC'),
        ad_id LowCardinality(String),
        user_id String,
        INDEX id_bloom id TYPE bloom_filter(0.01) GRANULARITY 4
      ) ENGINE = MergeTree
      PARTITION BY toDate(ts)
      ORDER BY (ts, ad_id)
      TTL toDateTime(ts) + INTERVAL ${retentionDays} DAY
      SETTINGS non_replicated_deduplication_window = 10000`,
      `CREATE TABLE IF NOT EXISTS impressions_per_minute (
        minute DateTime('UTC'),
        ad_id LowCardinality(String),
        impressions UInt64
      ) ENGINE = SummingMergeTree(impressions)
      PARTITION BY toDate(minute)
      ORDER BY (minute, ad_id)
      TTL minute + INTERVAL ${retentionDays} DAY
      SETTINGS non_replicated_deduplication_window = 10000`,
      `CREATE MATERIALIZED VIEW IF NOT EXISTS impressions_per_minute_mv TO impressions_per_minute AS
        SELECT toStartOfMinute(ts) AS minute, ad_id, count() AS impressions
        FROM impressions GROUP BY minute, ad_id`,
    ],
  },
  {
    version: 2,
    name: "per-hour projection of the per-minute rollup",
    // Kept inside each part, so it is exact without a backfill race; parts built before it are read
    // without it until MATERIALIZE reaches them. Summing merges change rows, hence 'rebuild'.
    statements: () => [
      "ALTER TABLE impressions_per_minute MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'",
      `ALTER TABLE impressions_per_minute ADD PROJECTION IF NOT EXISTS per_hour
        (SELECT toStartOfHour(minute), ad_id, sum(impressions) GROUP BY toStartOfHour(minute), ad_id)`,
      "ALTER TABLE impressions_per_minute MATERIALIZE PROJECTION per_hour",
    ],
  },
];

/** Every statement of one migration, as `layout` runs it. */
export function migrationStatements(m: Migration, settings: MigrationSettings, layout: StorageLayout): string[] {
  return m.statements(settings).flatMap((statement) => layoutStatements(layout, statement));
}

/** Applies the migrations not yet recorded in schema_migrations, in order. Safe to run from many processes. */
export async function migrate(
  client: ClickHouseClient,
  settings: MigrationSettings,
  layout: StorageLayout = ONE_SERVER,
): Promise<number[]> {
  await client.command({ query: schemaMigrationsStatement(layout) });
  const rows = await client.query({ query: "SELECT DISTINCT version FROM schema_migrations", format: "JSONEachRow" });
  const applied = new Set((await rows.json<{ version: number }>()).map((r) => Number(r.version)));
  const done: number[] = [];
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    for (const query of migrationStatements(m, settings, layout)) await client.command({ query });
    await client.insert({
      table: "schema_migrations",
      values: [{ version: m.version, name: m.name }],
      format: "JSONEachRow",
    });
    done.push(m.version);
  }
  return done;
}
