import type { Config } from "../config.ts";
import { type Cluster, clusterStatements, localTable, onCluster, qualified } from "./cluster-ddl.ts";

/**
 * Where the tables live. The app reads and inserts the tables by the names the migrations give them
 * (`impressions`, `impressions_per_minute`) in both layouts: on one server those are the tables; on a cluster
 * (CLICKHOUSE_CLUSTER) they are Distributed tables over `<name>_local`, the replicated tables of each shard.
 * This module turns the statements that create and alter them into the ones the layout runs.
 */
export type StorageLayout = { kind: "one-server" } | Cluster;

export const ONE_SERVER: StorageLayout = { kind: "one-server" };

export function storageLayout(config: Pick<Config, "CLICKHOUSE_CLUSTER" | "CLICKHOUSE_DATABASE">): StorageLayout {
  const cluster = config.CLICKHOUSE_CLUSTER;
  return cluster ? { kind: "cluster", cluster, database: config.CLICKHOUSE_DATABASE } : ONE_SERVER;
}

/** A migration's statement as the layout runs it: on one server, unchanged. */
export function layoutStatements(layout: StorageLayout, statement: string): string[] {
  return layout.kind === "cluster" ? clusterStatements(layout, statement) : [statement];
}

/** The table whose parts hold a table's rows (its TTL, its system.tables entry). */
export function storedTable(layout: StorageLayout, table: string): string {
  return layout.kind === "cluster" ? localTable(table) : table;
}

/**
 * Where a lookup that must see every stored row reads a table. In a cluster, every replica of every shard: a part
 * of an insert that reached a majority of its shard's replicas, or is still on its way to them, may not be on the
 * one replica a Distributed read would pick. A replica away fails the lookup.
 */
export function everyCopyOf(layout: StorageLayout, table: string): string {
  if (layout.kind === "one-server") return table;
  return `clusterAllReplicas('${layout.cluster}', ${qualified(layout, localTable(table))})`;
}

/**
 * On one server with the `database` query parameter (an Identifier). In a cluster the name is written in: each
 * server runs an ON CLUSTER statement from its text in Keeper's queue, without the initiator's parameters.
 */
export function createDatabaseStatement(layout: StorageLayout): string {
  if (layout.kind === "one-server") return "CREATE DATABASE IF NOT EXISTS {database:Identifier}";
  return `CREATE DATABASE IF NOT EXISTS \`${layout.database}\` ${onCluster(layout)}`;
}

/**
 * The record of applied migrations. In a cluster, every server is a replica of one copy (a Keeper path without
 * the shard), so any server the app connects to knows which migrations ran; the migrations themselves run
 * ON CLUSTER, on every server at once.
 */
export function schemaMigrationsStatement(layout: StorageLayout): string {
  const columns = "(version UInt32, name String, applied_at DateTime DEFAULT now())";
  if (layout.kind === "cluster") {
    return `CREATE TABLE IF NOT EXISTS ${qualified(layout, "schema_migrations")} ${onCluster(layout)} ${columns}
      ENGINE = ReplicatedReplacingMergeTree('/clickhouse/cluster-wide/{database}/{table}', '{shard}-{replica}') ORDER BY version`;
  }
  return `CREATE TABLE IF NOT EXISTS schema_migrations ${columns}
      ENGINE = ReplacingMergeTree ORDER BY version`;
}
