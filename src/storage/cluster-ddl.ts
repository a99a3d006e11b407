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
const ALTER_VIEW_QUERY = /^ALTER TABLE\s+(\w+)\s+MODIFY QUERY\b([\s\S]*)$/;
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
    // On every replica: a view fires on the replica an insert reaches, and writes that shard's local rollup.
    return [
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${qualified(cluster, name)} ${onCluster(cluster)} TO ${qualified(cluster, localTable(target))} AS${localSources(cluster, select)}`,
    ];
  }
  const viewQuery = ALTER_VIEW_QUERY.exec(text);
  if (viewQuery) {
    const [, name = "", select = ""] = viewQuery;
    return [
      `ALTER TABLE ${qualified(cluster, name)} ${onCluster(cluster)} MODIFY QUERY${localSources(cluster, select)}`,
    ];
  }
  const alter = ALTER_TABLE.exec(text);
  if (alter) {
    const [, name = "", action = ""] = alter;
    const alterOf = (target: string, actions: string) =>
      `ALTER TABLE ${qualified(cluster, target)} ${onCluster(cluster)} ${actions}`;
    // The Distributed table has the columns only: a sorting key, settings or projections are its local tables'.
    const columnChanges = clauses(action).filter((clause) => COLUMN_CHANGE.test(clause));
    if (columnChanges.length === 0) return [alterOf(localTable(name), action)];
    const distributed = alterOf(name, columnChanges.join(", "));
    // The Distributed table never names a column its local tables lack.
    return action.startsWith("DROP")
      ? [distributed, alterOf(localTable(name), action)]
      : [alterOf(localTable(name), action), distributed];
  }
  throw new Error(`no cluster rule for this statement (src/storage/cluster-ddl.ts): ${text.split("\n")[0]}`);
}

/** A view's SELECT reading each shard's local tables. */
function localSources(cluster: Cluster, select: string): string {
  return select.replace(READ_TABLE, (_, keyword, source) => `${keyword} ${qualified(cluster, localTable(source))}`);
}

/** An ALTER's comma-separated actions, split at the commas outside parentheses. */
function clauses(action: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < action.length; i++) {
    const char = action[i];
    if (char === "(") depth++;
    else if (char === ")") depth--;
    else if (char === "," && depth === 0) {
      parts.push(action.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(action.slice(start).trim());
  return parts;
}
