/** A ClickHouse cluster (a name of the servers' remote_servers) and the database the app's tables are in. */
export interface Cluster {
  kind: "cluster";
  cluster: string;
  database: string;
}

/**
 * Every table the migrations create, with the key its Distributed table shards inserted rows by. Only the raw
 * table is inserted into through its Distributed table: by a hash of the id, so every copy and replay of an id
 * lands on one shard. The rollup is written only by the materialized view on each shard's local raw table;
 * without a key, an INSERT into its Distributed table fails rather than bypass the raw table.
 */
const SHARDING_KEYS: Record<string, string | undefined> = {
  impressions: "cityHash64(id)",
  impressions_per_minute: undefined,
};

/** The replicated table of each shard that holds a table's rows. */
export function localTable(table: string): string {
  if (!(table in SHARDING_KEYS)) {
    throw new Error(`${table} has no sharding key in SHARDING_KEYS (src/storage/cluster-ddl.ts): add it there`);
  }
  return `${table}_local`;
}

export function qualified(cluster: Cluster, name: string): string {
  return `\`${cluster.database}\`.${name}`;
}

export function onCluster(cluster: Cluster): string {
  return `ON CLUSTER ${cluster.cluster}`;
}

/** Every replica of a shard keeps its copy under the shard's path in Keeper; the macros come from each server. */
const REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'";

const CREATE_TABLE =
  /^CREATE TABLE IF NOT EXISTS\s+(\w+)\s*(\([\s\S]*\))\s*ENGINE\s*=\s*(\w*MergeTree)(?:\(([^()]*)\))?([\s\S]*)$/;
const CREATE_VIEW = /^CREATE MATERIALIZED VIEW IF NOT EXISTS\s+(\w+)\s+TO\s+(\w+)\s+AS\b([\s\S]*)$/;
const ALTER_TABLE = /^ALTER TABLE\s+(\w+)\s+([\s\S]*)$/;
/** These change the columns, which the Distributed table has too; the rest (settings, projections, TTL) are storage. */
const COLUMN_CHANGE = /^(ADD|DROP|MODIFY|RENAME|CLEAR|COMMENT)\s+COLUMN\b/;
const READ_TABLE = /\b(FROM|JOIN)\s+(\w+)\b/g;

/**
 * A migration statement written for one server, as the cluster runs it: ON CLUSTER, on the shards' replicated
 * local tables, with a Distributed table of the original name over each. Any statement of another shape
 * throws, so a new kind of migration cannot slip through unclustered: extend the rules here.
 */
export function clusterStatements(cluster: Cluster, statement: string): string[] {
  const text = statement.trim();
  const table = CREATE_TABLE.exec(text);
  if (table) {
    const [, name = "", columns, engine, args, rest = ""] = table;
    const local = qualified(cluster, localTable(name));
    const engineArgs = args?.trim() ? `${REPLICA_PATH}, ${args.trim()}` : REPLICA_PATH;
    const shardingKey = SHARDING_KEYS[name];
    return [
      `CREATE TABLE IF NOT EXISTS ${local} ${onCluster(cluster)} ${columns} ENGINE = Replicated${engine}(${engineArgs})${rest.replaceAll("non_replicated_deduplication_window", "replicated_deduplication_window")}`,
      `CREATE TABLE IF NOT EXISTS ${qualified(cluster, name)} ${onCluster(cluster)} AS ${local}
      ENGINE = Distributed('${cluster.cluster}', '${cluster.database}', '${localTable(name)}'${shardingKey ? `, ${shardingKey}` : ""})`,
    ];
  }
  const view = CREATE_VIEW.exec(text);
  if (view) {
    const [, name = "", target = "", select = ""] = view;
    const localSelect = select.replace(
      READ_TABLE,
      (_, keyword, source) => `${keyword} ${qualified(cluster, localTable(source))}`,
    );
    // On every replica: a view fires on the replica an insert reaches, and writes that shard's local rollup.
    return [
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${qualified(cluster, name)} ${onCluster(cluster)} TO ${qualified(cluster, localTable(target))} AS${localSelect}`,
    ];
  }
  const alter = ALTER_TABLE.exec(text);
  if (alter) {
    const [, name = "", action = ""] = alter;
    const alterOf = (target: string) => `ALTER TABLE ${qualified(cluster, target)} ${onCluster(cluster)} ${action}`;
    if (!COLUMN_CHANGE.test(action)) return [alterOf(localTable(name))];
    // The Distributed table never names a column its local tables lack.
    return action.startsWith("DROP")
      ? [alterOf(name), alterOf(localTable(name))]
      : [alterOf(localTable(name)), alterOf(name)];
  }
  throw new Error(`no cluster rule for this statement (src/storage/cluster-ddl.ts): ${text.split("\n")[0]}`);
}
