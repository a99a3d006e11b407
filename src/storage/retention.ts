import type { ClickHouseClient } from "@clickhouse/client";
import { layoutStatements, ONE_SERVER, type StorageLayout, storedTable } from "./layout.ts";

/** Each table's TTL expression, less the retention: the migrations create them with it. */
const TTL_BASES: Record<string, string> = {
  impressions: "toDateTime(ts)",
  impressions_per_minute: "minute",
};

/** The tables that expire rows, by the names the migrations give them. */
export const RETAINED_TABLES = Object.keys(TTL_BASES);

/** A table whose TTL is not RETENTION_DAYS. */
export interface RetentionDifference {
  table: string;
  /** How many days the table keeps rows; null if its TTL is not one this app writes. */
  days: number | null;
  configured: number;
}

/** The command that makes the tables' TTL match RETENTION_DAYS: nothing else changes it. */
export const RETENTION_COMMAND = "npm run retention";

/** The statements that set `table`'s TTL to `retentionDays` (an integer validated by the config schema). */
export function retentionStatements(layout: StorageLayout, table: string, retentionDays: number): string[] {
  return layoutStatements(
    layout,
    `ALTER TABLE ${table} MODIFY TTL ${TTL_BASES[table]} + INTERVAL ${retentionDays} DAY`,
  );
}

/** Each retained table that exists, with the days its TTL keeps rows (null if unrecognised), by name order. */
export async function tableRetention(
  client: ClickHouseClient,
  layout: StorageLayout = ONE_SERVER,
): Promise<{ table: string; days: number | null }[]> {
  const byStoredName = new Map(RETAINED_TABLES.map((table) => [storedTable(layout, table), table]));
  const result = await client.query({
    query: `SELECT name, engine_full FROM system.tables
      WHERE database = currentDatabase() AND name IN {names:Array(String)}`,
    query_params: { names: [...byStoredName.keys()] },
    format: "JSONEachRow",
  });
  return (await result.json<{ name: string; engine_full: string }>())
    .map(({ name, engine_full }) => {
      const days = /\bTTL\b.*?toIntervalDay\((\d+)\)/.exec(engine_full)?.[1];
      return { table: byStoredName.get(name) ?? name, days: days === undefined ? null : Number(days) };
    })
    .sort((a, b) => a.table.localeCompare(b.table));
}

/** The tables whose TTL is not `retentionDays`. */
export async function retentionDifferences(
  client: ClickHouseClient,
  retentionDays: number,
  layout: StorageLayout = ONE_SERVER,
): Promise<RetentionDifference[]> {
  return (await tableRetention(client, layout))
    .filter(({ days }) => days !== retentionDays)
    .map(({ table, days }) => ({ table, days, configured: retentionDays }));
}

/** One line for the log: both retentions and the command that applies the configured one. */
export function describeRetentionDifference(difference: RetentionDifference): string {
  const kept = difference.days === null ? "a TTL this app did not write" : `a TTL of ${difference.days} days`;
  return (
    `table ${difference.table} has ${kept}, but RETENTION_DAYS=${difference.configured}; left unchanged ` +
    `(run \`${RETENTION_COMMAND}\` with RETENTION_DAYS=${difference.configured} to apply it, or set RETENTION_DAYS to match)`
  );
}

/**
 * Makes the tables' TTL match RETENTION_DAYS: only `npm run retention` calls it. The migrations write the TTL
 * once, at creation, and provisioning never changes it: a process started with a smaller RETENTION_DAYS (a typo,
 * a stale environment) would otherwise delete every older row for everyone. Alters only the tables whose TTL
 * differs (an ALTER re-applies the TTL to stored parts, in the background). Returns what it changed.
 */
export async function applyRetention(
  client: ClickHouseClient,
  retentionDays: number,
  layout: StorageLayout = ONE_SERVER,
): Promise<RetentionDifference[]> {
  const differences = await retentionDifferences(client, retentionDays, layout);
  for (const { table } of differences) {
    for (const query of retentionStatements(layout, table, retentionDays)) await client.command({ query });
  }
  return differences;
}
