import type { ClickHouseClient } from "@clickhouse/client";
import { layoutStatements, ONE_SERVER, type StorageLayout, storedTable } from "./layout.ts";

/** Each table's TTL expression, less the retention: the migrations create them with it. */
const TTL_BASES: Record<string, string> = {
  impressions: "toDateTime(ts)",
  impressions_per_minute: "minute",
};

/** The tables that expire rows, by the names the migrations give them. */
export const RETAINED_TABLES = Object.keys(TTL_BASES);

/** The statements that set `table`'s TTL to `retentionDays` (an integer validated by the config schema). */
export function retentionStatements(layout: StorageLayout, table: string, retentionDays: number): string[] {
  return layoutStatements(
    layout,
    `ALTER TABLE ${table} MODIFY TTL ${TTL_BASES[table]} + INTERVAL ${retentionDays} DAY`,
  );
}

/**
 * Makes the tables' TTL match RETENTION_DAYS. The migrations write the TTL once, at creation; without this
 * a later change of the setting would move the ingest and stats limits but leave ClickHouse deleting rows
 * at the old age. Alters only the tables whose TTL differs (an ALTER re-applies the TTL to stored parts).
 * Returns the tables it changed.
 */
export async function applyRetention(
  client: ClickHouseClient,
  retentionDays: number,
  layout: StorageLayout = ONE_SERVER,
): Promise<string[]> {
  const byStoredName = new Map(RETAINED_TABLES.map((table) => [storedTable(layout, table), table]));
  const result = await client.query({
    query: `SELECT name, engine_full FROM system.tables
      WHERE database = currentDatabase() AND name IN {names:Array(String)}`,
    query_params: { names: [...byStoredName.keys()] },
    format: "JSONEachRow",
  });
  const changed: string[] = [];
  for (const { name, engine_full } of await result.json<{ name: string; engine_full: string }>()) {
    const current = Number(/\bTTL\b.*?toIntervalDay\((\d+)\)/.exec(engine_full)?.[1]);
    if (current === retentionDays) continue;
    const table = byStoredName.get(name) ?? name;
    for (const query of retentionStatements(layout, table, retentionDays)) await client.command({ query });
    changed.push(table);
  }
  return changed.sort();
}
