import { configOrExit } from "../config.ts";
import { createClickHouse } from "./clickhouse.ts";
import { storageLayout } from "./layout.ts";
import { applyRetention, RETAINED_TABLES, tableRetention } from "./retention.ts";

/**
 * Composition root of `npm run retention`: sets the tables' TTL to RETENTION_DAYS and prints what it changed.
 * The only way the TTL changes once the tables exist: a shorter one deletes the older rows, for everyone.
 */
async function main(): Promise<void> {
  const config = configOrExit(process.env);
  const layout = storageLayout(config);
  const days = config.RETENTION_DAYS;
  const where = `database ${config.CLICKHOUSE_DATABASE} at ${config.CLICKHOUSE_URL}`;
  const clickhouse = createClickHouse(config);
  try {
    const found = new Set((await tableRetention(clickhouse, layout)).map((t) => t.table));
    const missing = RETAINED_TABLES.filter((table) => !found.has(table));
    if (missing.length > 0) {
      throw new Error(`no table ${missing.join(", ")} in ${where}: start the app (npm start) or a worker once first`);
    }
    const changed = await applyRetention(clickhouse, days, layout);
    for (const { table, days: before } of changed) {
      console.log(`${table}: TTL ${before === null ? "(not one this app wrote)" : `${before} days`} -> ${days} days`);
    }
    if (changed.length === 0) console.log(`the tables of ${where} already keep rows ${days} days: nothing changed`);
    else if (changed.some((c) => c.days === null || c.days > days)) {
      console.log(`rows older than ${days} days are deleted in the background, as ClickHouse rewrites the parts`);
    }
  } finally {
    await clickhouse.close();
  }
}

main().catch((error: unknown) => {
  console.error(`retention: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
