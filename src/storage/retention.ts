import type { ClickHouseClient } from "@clickhouse/client";

/** Each table's TTL expression, less the retention: the migrations create them with it. */
const TTL_BASES: Record<string, string> = {
  impressions: "toDateTime(ts)",
  impressions_per_minute: "minute",
};

/**
 * Makes the tables' TTL match RETENTION_DAYS. The migrations write the TTL once, at creation; without this
 * a later change of the setting would move the ingest and stats limits but leave ClickHouse deleting rows
 * at the old age. Alters only the tables whose TTL differs (an ALTER re-applies the TTL to stored parts).
 * Returns the tables it changed.
 */
export async function applyRetention(client: ClickHouseClient, retentionDays: number): Promise<string[]> {
  const result = await client.query({
    query: `SELECT name, engine_full FROM system.tables
      WHERE database = currentDatabase() AND name IN {names:Array(String)}`,
    query_params: { names: Object.keys(TTL_BASES) },
    format: "JSONEachRow",
  });
  const changed: string[] = [];
  for (const { name, engine_full } of await result.json<{ name: string; engine_full: string }>()) {
    const current = Number(/\bTTL\b.*?toIntervalDay\((\d+)\)/.exec(engine_full)?.[1]);
    if (current === retentionDays) continue;
    // retentionDays is an integer validated by the config schema.
    await client.command({
      query: `ALTER TABLE ${name} MODIFY TTL ${TTL_BASES[name]} + INTERVAL ${retentionDays} DAY`,
    });
    changed.push(name);
  }
  return changed.sort();
}
