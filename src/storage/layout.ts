/**
 * Where the tables live. The app reads and inserts the tables by the names the migrations give them
 * (`impressions`, `impressions_per_minute`); this module turns the statements that create and alter them into
 * the ones the layout runs.
 */
export type StorageLayout = { kind: "one-server" };

export const ONE_SERVER: StorageLayout = { kind: "one-server" };

/** A migration's statement as the layout runs it: on one server, unchanged. */
export function layoutStatements(_layout: StorageLayout, statement: string): string[] {
  return [statement];
}

/** The table whose parts hold a table's rows (its TTL, its system.tables entry). */
export function storedTable(_layout: StorageLayout, table: string): string {
  return table;
}

/** With the `database` query parameter (an Identifier). */
export function createDatabaseStatement(_layout: StorageLayout): string {
  return "CREATE DATABASE IF NOT EXISTS {database:Identifier}";
}

/** The record of applied migrations. */
export function schemaMigrationsStatement(_layout: StorageLayout): string {
  return `CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now())
      ENGINE = ReplacingMergeTree ORDER BY version`;
}
