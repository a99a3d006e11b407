import type { ClickHouseClient } from "@clickhouse/client";
import { onCluster } from "./cluster-ddl.ts";
import type { StorageLayout } from "./layout.ts";

export interface QueryUser {
  /** A plain name (letters, digits, _: the config's check). */
  name: string;
  password: string;
  /** The one database it may read. */
  database: string;
}

/** A string literal of ClickHouse SQL: the password is the one value here not checked by a pattern. */
function literal(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/**
 * The read-only user of the query routes (CLICKHOUSE_QUERY_USER): created if missing, its password and settings
 * made current (a changed CLICKHOUSE_QUERY_PASSWORD applies at the next provision), SELECT on the app's database
 * and nothing else. readonly = 2 (not 1): the query routes send their limits as settings of each query, which
 * readonly = 1 refuses; 2 still refuses every write and DDL, and a change of readonly itself. In a cluster, on
 * every server (users live in each server's local access storage).
 */
export function queryUserStatements(layout: StorageLayout, user: QueryUser): string[] {
  const on = layout.kind === "cluster" ? ` ${onCluster(layout)}` : "";
  const identified =
    user.password === "" ? "NOT IDENTIFIED" : `IDENTIFIED WITH sha256_password BY ${literal(user.password)}`;
  return [
    `CREATE USER IF NOT EXISTS ${user.name}${on} ${identified} SETTINGS readonly = 2`,
    `ALTER USER ${user.name}${on} ${identified} SETTINGS readonly = 2`,
    `GRANT${on} SELECT ON \`${user.database}\`.* TO ${user.name}`,
  ];
}

/** Runs queryUserStatements: needs a CLICKHOUSE_USER allowed to manage users (access_management). */
export async function ensureQueryUser(client: ClickHouseClient, layout: StorageLayout, user: QueryUser): Promise<void> {
  try {
    for (const query of queryUserStatements(layout, user)) await client.command({ query });
  } catch (error) {
    throw new Error(
      `cannot create the query user ${user.name} (CLICKHOUSE_QUERY_USER): ${(error as Error).message}. ` +
        "CLICKHOUSE_USER must be allowed to manage users (access_management); the dev server has no users, " +
        "leave CLICKHOUSE_QUERY_USER empty there",
      { cause: error },
    );
  }
}
