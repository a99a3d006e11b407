import type { ClickHouseClient, ClickHouseSettings } from "@clickhouse/client";
import { queryBind } from "chdb";
import { describe, expect, it } from "vitest";
import { makeImpression } from "../../test/support/impressions.ts";
import { loadConfig } from "../config.ts";
import { storedTotals } from "../stats/pipeline-totals.ts";
import { countPerAd, reachPerAd, timeSeries } from "../stats/queries.ts";
import { plainRows } from "../stats/reader.ts";
import { clusterStatements } from "./cluster-ddl.ts";
import { findStoredIds, storeImpressions } from "./impressions.ts";
import { createDatabaseStatement, storageLayout } from "./layout.ts";
import { migrate, migrations } from "./migrations.ts";
import { queryUserStatements } from "./query-user.ts";
import { applyRetention } from "./retention.ts";

/**
 * ClickHouse's own parser (the engine of the chdb package): the statement as ClickHouse formats it back, or
 * its syntax error thrown. No ClickHouse cluster can run here, so this is what checks the cluster statements.
 */
function formatQuery(statement: string): string {
  return queryBind("SELECT formatQuery({statement:String})", { statement }, "TSVRaw").trim();
}

const cluster = storageLayout(loadConfig({ CLICKHOUSE_CLUSTER: "impressions", CLICKHOUSE_DATABASE: "ads" }));

interface Sent {
  query: string;
  clickhouse_settings?: ClickHouseSettings;
}

/**
 * A client that records what the app sends and answers every query with `rows`: the statements, without a server.
 * The replay lookup reads JSONCompact, the others ...EachRow.
 */
function recordingClient(rows: (query: string) => unknown = (query) => (query.includes(") IN (") ? { data: [] } : [])) {
  const commands: Sent[] = [];
  const queries: Sent[] = [];
  const inserts: { table: string; clickhouse_settings?: ClickHouseSettings }[] = [];
  const client = {
    command: async (params: Sent) => void commands.push(params),
    query: async (params: Sent) => {
      queries.push(params);
      return { json: async () => rows(params.query) };
    },
    insert: async (params: { table: string; clickhouse_settings?: ClickHouseSettings }) => void inserts.push(params),
  } as unknown as ClickHouseClient;
  return { client, commands, queries, inserts };
}

/** Every DDL statement cluster mode sends: the database, the migrations record, every migration, the TTL changes. */
async function clusterDdl(): Promise<string[]> {
  const { client, commands } = recordingClient((query) =>
    query.includes("system.tables")
      ? [
          { name: "impressions_local", engine_full: "ReplicatedMergeTree TTL toDateTime(ts) + toIntervalDay(30)" },
          {
            name: "impressions_per_minute_local",
            engine_full: "ReplicatedSummingMergeTree TTL minute + toIntervalDay(30)",
          },
        ]
      : [],
  );
  await migrate(client, { retentionDays: 30 }, cluster);
  expect((await applyRetention(client, 60, cluster)).map((c) => c.table)).toEqual([
    "impressions",
    "impressions_per_minute",
  ]);
  return [createDatabaseStatement(cluster), ...commands.map((c) => c.query)];
}

/** Every read the API and the workers send, with parameters left as ClickHouse's {name:Type} placeholders. */
async function reads(): Promise<string[]> {
  const { client, queries } = recordingClient();
  const now = Date.parse("2026-12-01T10:17:23.456Z");
  for (const minutes of [1, 90, 1440]) {
    await countPerAd(plainRows(client), { now, minutes, adIds: ["ad-1"], limit: 10 });
    await reachPerAd(plainRows(client), { now, minutes, adIds: [], limit: 10 });
    await timeSeries(plainRows(client), { now, minutes, adIds: ["ad-1"] });
  }
  await storedTotals(plainRows(client));
  await findStoredIds(client, [makeImpression("lookup"), makeImpression("it's")], { layout: cluster });
  return queries.map((q) => q.query);
}

describe("cluster mode, checked by ClickHouse's parser", () => {
  it("the parser check fails on a syntax error", () => {
    expect(formatQuery("SELECT 1")).toBe("SELECT 1");
    expect(() => formatQuery("CREATE TABLE t ON CLUSTER c (id String) ENGINE = ReplicatedMergeTree(")).toThrow(
      /Syntax error/,
    );
  });

  it("every DDL statement parses", async () => {
    const statements = await clusterDdl();
    expect(statements.length).toBeGreaterThan(migrations.length);
    for (const statement of statements) expect(() => formatQuery(statement), statement).not.toThrow();
  });

  it("every read parses", async () => {
    for (const statement of await reads()) expect(() => formatQuery(statement), statement).not.toThrow();
  });

  it("would catch a rule that wrote them wrong", async () => {
    // As if a rule forgot the cluster's name: not one statement parses.
    for (const statement of await clusterDdl()) {
      expect(() => formatQuery(statement.replace("ON CLUSTER impressions", "ON CLUSTER")), statement).toThrow(
        /Syntax error/,
      );
    }
  });
});

describe("cluster mode's statements", () => {
  it("create everything ON CLUSTER, the local tables replicated, Distributed tables over them", async () => {
    const ddl = (await clusterDdl()).map(formatQuery);
    for (const statement of ddl) expect(statement).toMatch(/ON CLUSTER impressions\b/);
    expect(ddl[0]).toBe("CREATE DATABASE IF NOT EXISTS ads ON CLUSTER impressions");
    const creates = ddl.filter((s) => s.startsWith("CREATE TABLE"));
    const engine = (table: string) =>
      creates.find((s) => s.includes(`ads.${table} ON CLUSTER`))?.match(/ENGINE = (.*)/)?.[1];
    const replicaPath = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'";
    expect(engine("impressions_local")).toBe(`ReplicatedMergeTree(${replicaPath})`);
    expect(engine("impressions_per_minute_local")).toBe(`ReplicatedSummingMergeTree(${replicaPath}, impressions)`);
    expect(engine("impressions")).toBe("Distributed('impressions', 'ads', 'impressions_local', cityHash64(id))");
    expect(engine("impressions_per_minute")).toBe("Distributed('impressions', 'ads', 'impressions_per_minute_local')");
    // Every server is a replica of the one record of applied migrations: the path has no shard.
    expect(engine("schema_migrations")).toBe(
      "ReplicatedReplacingMergeTree('/clickhouse/cluster-wide/{database}/{table}', '{shard}-{replica}')",
    );
    for (const local of creates.filter((s) => s.includes("_local ON CLUSTER"))) {
      expect(local).toContain("replicated_deduplication_window = 10000");
      expect(local).not.toContain("non_replicated");
    }
  });

  it("put the view on each shard's local raw table, writing its local rollup", async () => {
    const [view] = (await clusterDdl()).filter((s) => s.startsWith("CREATE MATERIALIZED VIEW"));
    expect(formatQuery(view ?? "")).toMatch(
      /^CREATE MATERIALIZED VIEW IF NOT EXISTS ads\.impressions_per_minute_mv ON CLUSTER impressions TO ads\.impressions_per_minute_local[\s\S]*FROM ads\.impressions_local\b/,
    );
  });

  it("alter the local tables: projections and TTL on the shards, columns on both", async () => {
    const alters = (await clusterDdl()).filter((s) => s.startsWith("ALTER TABLE"));
    expect(alters.map((s) => /^ALTER TABLE (\S+)/.exec(s)?.[1])).toEqual([
      "`ads`.impressions_per_minute_local",
      "`ads`.impressions_per_minute_local",
      "`ads`.impressions_per_minute_local",
      "`ads`.impressions_local",
      "`ads`.impressions",
      "`ads`.impressions_per_minute_local",
      "`ads`.impressions_per_minute_local",
      "`ads`.impressions_per_minute",
      "`ads`.impressions_per_minute_mv",
      "`ads`.impressions_per_minute_local",
      "`ads`.impressions_per_minute_local",
      "`ads`.impressions_local",
      "`ads`.impressions",
      "`ads`.impressions_local",
      "`ads`.impressions_per_minute_local",
    ]);
    // Migration 4's column on both raw tables: the shards' and the Distributed one that writes to them.
    const networkColumn = alters.filter((s) => s.includes("ADD COLUMN IF NOT EXISTS ip_prefix")).map(formatQuery);
    expect(networkColumn).toHaveLength(2);
    expect(networkColumn[0]).toMatch(/^ALTER TABLE ads\.impressions_local ON CLUSTER impressions\s/);
    expect(networkColumn[1]).toMatch(/^ALTER TABLE ads\.impressions ON CLUSTER impressions\s/);
    expect(alters.at(-1)).toContain("MODIFY TTL minute + INTERVAL 60 DAY");
    // A new sorting key is the local tables' own: their Distributed table takes only the new columns.
    const rollupKey = alters.filter((s) => s.includes("MODIFY ORDER BY")).map(formatQuery);
    expect(rollupKey).toHaveLength(1);
    expect(rollupKey[0]).toMatch(/^ALTER TABLE ads\.impressions_per_minute_local ON CLUSTER impressions\s/);
    const rollupColumns = alters.find((s) => s.startsWith("ALTER TABLE `ads`.impressions_per_minute ON"));
    expect(formatQuery(rollupColumns ?? "")).toMatch(
      /ADD COLUMN IF NOT EXISTS `kind`[\s\S]*ADD COLUMN IF NOT EXISTS `traffic`/,
    );
    expect(rollupColumns).not.toContain("ORDER BY");
    // The view's new query reads each shard's local raw table, as its first one did.
    const viewQuery = alters.find((s) => s.includes("MODIFY QUERY"));
    expect(formatQuery(viewQuery ?? "")).toMatch(
      /^ALTER TABLE ads\.impressions_per_minute_mv ON CLUSTER impressions\s+\(MODIFY QUERY[\s\S]*FROM ads\.impressions_local\b/,
    );
    const addColumn = clusterStatements(
      { kind: "cluster", cluster: "impressions", database: "ads" },
      "ALTER TABLE impressions ADD COLUMN IF NOT EXISTS country LowCardinality(String) DEFAULT ''",
    );
    expect(addColumn.map((s) => /^ALTER TABLE (\S+)/.exec(s)?.[1])).toEqual([
      "`ads`.impressions_local",
      "`ads`.impressions",
    ]);
    for (const statement of addColumn) expect(() => formatQuery(statement)).not.toThrow();
  });

  it("refuse a statement or a table they have no rule for", () => {
    const c = { kind: "cluster", cluster: "impressions", database: "ads" } as const;
    expect(() => clusterStatements(c, "DROP TABLE impressions")).toThrow(/no cluster rule/);
    expect(() =>
      clusterStatements(c, "CREATE TABLE IF NOT EXISTS clicks (id String) ENGINE = MergeTree ORDER BY id"),
    ).toThrow(/clicks has no sharding key/);
  });

  it("insert synchronously through the Distributed table, on a majority of replicas, deduplicated by content", async () => {
    const { client, inserts } = recordingClient();
    await storeImpressions(client, [makeImpression("insert")], { timeoutMs: 1000 }, cluster);
    expect(inserts).toHaveLength(1);
    expect(inserts[0]?.table).toBe("impressions");
    expect(inserts[0]?.clickhouse_settings).toMatchObject({
      distributed_foreground_insert: 1,
      insert_quorum: "auto",
      insert_deduplicate: 1,
      deduplicate_blocks_in_dependent_materialized_views: 1,
    });
    expect(inserts[0]?.clickhouse_settings).not.toHaveProperty("insert_deduplication_token");
  });

  it("look replays up on every replica of every shard", async () => {
    const { client, queries } = recordingClient();
    await findStoredIds(client, [makeImpression("replay")], { layout: cluster });
    expect(formatQuery(queries[0]?.query ?? "")).toContain(
      "FROM clusterAllReplicas('impressions', ads.impressions_local)",
    );
  });
});

describe("the query routes' read-only user (CLICKHOUSE_QUERY_USER)", () => {
  const user = { name: "stats_reader", password: "it's a \\ secret", database: "ads" };

  it("is created, kept current and granted SELECT on the database only, on every server of a cluster", () => {
    const statements = queryUserStatements(cluster, user).map(formatQuery);
    expect(statements).toEqual([
      "CREATE USER IF NOT EXISTS stats_reader ON CLUSTER impressions IDENTIFIED WITH sha256_password BY 'it\\'s a \\\\ secret' SETTINGS readonly = 2",
      "ALTER USER stats_reader ON CLUSTER impressions IDENTIFIED WITH sha256_password BY 'it\\'s a \\\\ secret' DROP ALL SETTINGS, DROP ALL PROFILES, ADD SETTING readonly = 2",
      "GRANT ON CLUSTER impressions SELECT ON ads.* TO stats_reader",
    ]);
  });

  it("is created on one server without ON CLUSTER, and without a password when none is set", () => {
    const statements = queryUserStatements(storageLayout(loadConfig({})), { ...user, password: "" });
    for (const statement of statements) expect(() => formatQuery(statement), statement).not.toThrow();
    expect(statements.join("\n")).not.toContain("ON CLUSTER");
    expect(formatQuery(statements[0] ?? "")).toBe(
      "CREATE USER IF NOT EXISTS stats_reader IDENTIFIED WITH no_password SETTINGS readonly = 2",
    );
  });
});

describe("CLICKHOUSE_CLUSTER", () => {
  it("is one server when unset or empty, a cluster when named, and refused when not a name", () => {
    expect(storageLayout(loadConfig({}))).toEqual({ kind: "one-server" });
    expect(storageLayout(loadConfig({ CLICKHOUSE_CLUSTER: "" }))).toEqual({ kind: "one-server" });
    expect(cluster).toEqual({ kind: "cluster", cluster: "impressions", database: "ads" });
    expect(() => loadConfig({ CLICKHOUSE_CLUSTER: "my cluster" })).toThrow(/CLICKHOUSE_CLUSTER="my cluster"/);
  });
});
