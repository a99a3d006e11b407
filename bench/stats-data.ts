/**
 * The stats benchmark's stored impressions, generated inside ClickHouse (INSERT ... SELECT FROM numbers()):
 * a 10M and a 100M database side by side in one server, each 1,000 ads and 1M users evenly over the same 24
 * hours, inserted in time order as workers insert them, so the two differ only in how many impressions each
 * minute holds. (Adding 90M rows to the 10M database instead would leave every minute in two overlapping parts
 * and the rollup less merged, which a live system's data, arriving in time order, does not show.)
 */
import type { ClickHouseClient } from "@clickhouse/client";
import { MINUTE_MS } from "../src/stats/window.ts";
import { migrate } from "../src/storage/migrations.ts";

export const ADS = 1_000;
export const USERS = 1_000_000;
/** Data ends this far after loading, so windows measured in the following minutes are full. */
const AHEAD_MS = 30 * MINUTE_MS;
/** One INSERT each: a statement stays well inside the client's request timeout. */
const CHUNK_ROWS = 10_000_000;

export interface Dataset {
  label: string;
  rows: number;
  database: string;
}

export const DATASETS: Dataset[] = [
  { label: "10M", rows: 10_000_000, database: "bench_stats_10m" },
  { label: "100M", rows: 100_000_000, database: "bench_stats_100m" },
];

async function scalar(client: ClickHouseClient, query: string, query_params?: Record<string, unknown>) {
  const result = await client.query({ query, query_params, format: "JSONCompactEachRow" });
  const rows = await result.json<[string | number]>();
  return Number(rows[0]?.[0]);
}

/** `total` rows spread evenly over the 24 hours ending at `until`, in time order. */
export async function insertDay(client: ClickHouseClient, until: number, total: number) {
  for (let chunk = 0; chunk < total; chunk += CHUNK_ROWS) {
    const rows = Math.min(CHUNK_ROWS, total - chunk);
    await client.command({
      query: `INSERT INTO impressions (id, ts, ad_id, user_id)
        SELECT toString(number),
          fromUnixTimestamp64Milli(toInt64({until:Int64} - 86400000 + intDiv(number * 86400000, ${total})), 'UTC'),
          concat('ad', toString(cityHash64(number, 2) % ${ADS})),
          concat('u', toString(cityHash64(number, 3) % ${USERS}))
        FROM numbers(${chunk}, ${rows})`,
      query_params: { until },
      clickhouse_settings: { wait_end_of_query: 1 },
    });
  }
}

/** The latest `ts` of a dataset in epoch ms, or 0 when it is missing or not whole. */
export async function loadedUntil(admin: ClickHouseClient, dataset: Dataset): Promise<number> {
  const tables = await scalar(
    admin,
    "SELECT count() FROM system.tables WHERE database = {db:String} AND name IN ('impressions', 'impressions_per_minute')",
    { db: dataset.database },
  );
  if (tables !== 2) return 0;
  const rows = await scalar(admin, `SELECT count() FROM ${dataset.database}.impressions`);
  if (rows !== dataset.rows) return 0;
  return scalar(admin, `SELECT toUnixTimestamp64Milli(max(ts)) FROM ${dataset.database}.impressions`);
}

/** Background merges left by the inserts, the state the rollup is read in (as a live system's would be). */
export async function waitForMerges(
  admin: ClickHouseClient,
  databases = DATASETS.map((d) => d.database),
): Promise<void> {
  const busy = () =>
    scalar(
      admin,
      `SELECT (SELECT count() FROM system.merges WHERE database IN {dbs:Array(String)})
        + (SELECT count() FROM system.mutations WHERE database IN {dbs:Array(String)} AND NOT is_done)`,
      { dbs: databases },
    );
  let quiet = 0;
  while (quiet < 3) {
    quiet = (await busy()) === 0 ? quiet + 1 : 0;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/**
 * Reuses both datasets while they cover the next minutes, otherwise makes both again, over the same 24 hours.
 * Each database gets the app's migrations. Returns a line per dataset for the report: load time, and the parts
 * and rows its tables are read in.
 */
export async function prepareDatasets(
  admin: ClickHouseClient,
  clientOf: (dataset: Dataset) => ClickHouseClient,
  retentionDays: number,
): Promise<string[]> {
  const untils = await Promise.all(DATASETS.map((d) => loadedUntil(admin, d)));
  // Made together, their last rows lie within milliseconds of the same end (one row every 8.6 ms or 0.86 ms).
  const reusable = untils.every(
    (until) => Math.abs(until - (untils[0] ?? 0)) < 1_000 && until > Date.now() + 5 * MINUTE_MS,
  );
  const loadSeconds = new Map<string, string>();
  if (!reusable) {
    const until = Date.now() + AHEAD_MS;
    for (const dataset of DATASETS) {
      await admin.command({ query: `DROP DATABASE IF EXISTS ${dataset.database}` });
      await admin.command({ query: `CREATE DATABASE ${dataset.database}` });
      const client = clientOf(dataset);
      await migrate(client, { retentionDays });
      const started = performance.now();
      await insertDay(client, until, dataset.rows);
      loadSeconds.set(dataset.label, ((performance.now() - started) / 1000).toFixed(0));
      console.log(`loaded ${dataset.label} impressions in ${loadSeconds.get(dataset.label)} s`);
    }
  } else {
    for (const dataset of DATASETS) await migrate(clientOf(dataset), { retentionDays });
  }
  const waitStarted = performance.now();
  await waitForMerges(admin);
  console.log(`background merges settled in ${((performance.now() - waitStarted) / 1000).toFixed(0)} s`);
  const report: string[] = [];
  for (const dataset of DATASETS) {
    const parts = await (
      await admin.query({
        query: `SELECT table, count(), sum(rows) FROM system.parts WHERE database = {db:String} AND active
          AND table IN ('impressions', 'impressions_per_minute') GROUP BY table ORDER BY table`,
        query_params: { db: dataset.database },
        format: "JSONCompactEachRow",
      })
    ).json<[string, string, string]>();
    const state = parts.map(([table, n, rows]) => `${table} ${n} parts, ${Number(rows).toLocaleString("en")} rows`);
    const loaded = loadSeconds.has(dataset.label) ? `loaded in ${loadSeconds.get(dataset.label)} s` : "reused";
    report.push(`${dataset.label}: ${loaded}; ${state.join("; ")}`);
  }
  return report;
}
