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
  {
    version: 3,
    name: "event kind and traffic label on every row and in the rollup's key",
    // The rollup's key may take only new columns without a default expression, so rows rolled up before this
    // migration hold '' in both: impressions, unclassified (src/storage/dimensions.ts reads them so). The view's
    // query changes in place (no moment without a view, so no insert is missed); the projection is rebuilt with
    // the new key, and until MATERIALIZE reaches a part that part is read without it (exact, slower).
    statements: () => [
      `ALTER TABLE impressions
        ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT 'impression',
        ADD COLUMN IF NOT EXISTS traffic LowCardinality(String) DEFAULT 'unclassified'`,
      "ALTER TABLE impressions_per_minute DROP PROJECTION IF EXISTS per_hour",
      `ALTER TABLE impressions_per_minute
        ADD COLUMN IF NOT EXISTS kind LowCardinality(String),
        ADD COLUMN IF NOT EXISTS traffic LowCardinality(String),
        MODIFY ORDER BY (minute, ad_id, kind, traffic)`,
      `ALTER TABLE impressions_per_minute_mv MODIFY QUERY
        SELECT toStartOfMinute(ts) AS minute, ad_id, kind, traffic, count() AS impressions
        FROM impressions GROUP BY minute, ad_id, kind, traffic`,
      `ALTER TABLE impressions_per_minute ADD PROJECTION IF NOT EXISTS per_hour
        (SELECT toStartOfHour(minute), ad_id, kind, traffic, sum(impressions)
         GROUP BY toStartOfHour(minute), ad_id, kind, traffic)`,
      "ALTER TABLE impressions_per_minute MATERIALIZE PROJECTION per_hour",
    ],
  },
  {
    version: 4,
    name: "the viewer's network on every row",
    // Never the address: an IPv4 /24 or IPv6 /48 (src/ip-address.ts). '' where the API knew no viewer address.
    statements: () => ["ALTER TABLE impressions ADD COLUMN IF NOT EXISTS ip_prefix String DEFAULT ''"],
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
