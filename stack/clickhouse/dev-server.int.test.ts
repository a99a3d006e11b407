import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ClickHouseClient,
  ClickHouseError,
  ClickHouseLogLevel,
  type ClickHouseSettings,
  createClient,
} from "@clickhouse/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClickHouse } from "../clickhouse.ts";
import { freePort } from "../process.ts";

const serverScript = fileURLToPath(new URL("./dev-server.ts", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "chdb-dev-server-"));

interface Running {
  url: string;
  child: ChildProcess;
  /** What the server printed so far. */
  output(): string;
  /** Sends the signal and resolves once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

async function startServer(dataDir: string): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, [serverScript], {
    env: { ...process.env, CHDB_DATA_DIR: dataDir, CHDB_PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("listening on")) resolve();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    void exited.then(() => reject(new Error(`dev server exited before it was ready: ${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    output: () => output,
    async stop(signal = "SIGTERM") {
      child.kill(signal);
      await exited;
    },
  };
}

const clients: ClickHouseClient[] = [];
function client(url: string, options: Parameters<typeof createClient>[0] = {}): ClickHouseClient {
  const c = createClient({ url, ...options });
  clients.push(c);
  return c;
}

async function count(c: ClickHouseClient, table: string): Promise<number> {
  const rows = await (await c.query({ query: `SELECT count() AS n FROM ${table}`, format: "JSONEachRow" })).json<{
    n: string | number;
  }>();
  return Number(rows[0]?.n);
}

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  rmSync(root, { recursive: true, force: true });
});

describe("chdb dev server through the official client", () => {
  let server: Running;
  let ch: ClickHouseClient;

  beforeAll(async () => {
    server = await startServer(join(root, "shared"));
    // gzip both ways, as the app may configure it.
    ch = client(server.url, { compression: { request: true, response: true } });
  });

  afterAll(() => server?.stop());

  it("answers ping", async () => {
    expect(await ch.ping()).toEqual({ success: true });
    const res = await fetch(`${server.url}/ping`, { method: "HEAD" });
    expect(res.status).toBe(200);
  });

  it("creates a table, inserts JSONEachRow and dedupes a repeated insert_deduplication_token", async () => {
    await ch.command({
      query: `CREATE TABLE events (id UInt64, name String) ENGINE = MergeTree ORDER BY id
              SETTINGS non_replicated_deduplication_window = 1000`,
    });
    const values = [
      { id: 1, name: "a" },
      { id: 2, name: "b" },
    ];
    await ch.insert({ table: "events", values, format: "JSONEachRow" });
    const withToken = { table: "events", values, format: "JSONEachRow" as const };
    await ch.insert({ ...withToken, clickhouse_settings: { insert_deduplication_token: "batch-1" } });
    await ch.insert({ ...withToken, clickhouse_settings: { insert_deduplication_token: "batch-1" } });
    await ch.insert({ ...withToken, clickhouse_settings: { insert_deduplication_token: "batch-2" } });
    expect(await count(ch, "events")).toBe(6);
  });

  // deduplicate_blocks_in_dependent_materialized_views defaults to 1 since ClickHouse 26.2; older servers need it set.
  it.each<[string, number, ClickHouseSettings]>([
    ["with the engine's defaults", 1, {}],
    [
      "with deduplicate_blocks_in_dependent_materialized_views=1",
      2,
      { deduplicate_blocks_in_dependent_materialized_views: 1 },
    ],
  ])("does not double count a retried insert in a materialized view's target, %s", async (_, n, settings) => {
    const window = "SETTINGS non_replicated_deduplication_window = 1000";
    await ch.command({ query: `CREATE TABLE mv_src${n} (k String) ENGINE = MergeTree ORDER BY k ${window}` });
    await ch.command({
      query: `CREATE TABLE mv_counts${n} (k String, c UInt64) ENGINE = SummingMergeTree ORDER BY k ${window}`,
    });
    await ch.command({
      query: `CREATE MATERIALIZED VIEW mv${n} TO mv_counts${n} AS SELECT k, count() AS c FROM mv_src${n} GROUP BY k`,
    });
    const insert = () =>
      ch.insert({
        table: `mv_src${n}`,
        values: [{ k: "x" }, { k: "x" }, { k: "y" }],
        format: "JSONEachRow",
        clickhouse_settings: { ...settings, insert_deduplication_token: "retry-me" },
      });
    await insert();
    await insert();
    const query = `SELECT k, sum(c) AS c FROM mv_counts${n} GROUP BY k ORDER BY k`;
    const rows = await (await ch.query({ query, format: "JSONEachRow" })).json<{ k: string; c: number | string }>();
    expect(rows.map((r) => [r.k, Number(r.c)])).toEqual([
      ["x", 2],
      ["y", 1],
    ]);
  });

  it("binds query parameters as a real server does", async () => {
    const nasty = "it's a \\ back\\slash, a\ttab, a\nnewline, '' and \\' {x:String}";
    const result = await ch.query({
      // Since 25.8 ClickHouse writes 64-bit integers in JSON unquoted, which a JS number cannot hold.
      clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
      query: `SELECT {s:String} AS s, {a:Array(String)} AS a, {n:UInt64} AS n,
                     toString({t:DateTime64(3, 'UTC')}) AS t, {missing:Nullable(String)} AS missing`,
      format: "JSON",
      query_params: {
        s: nasty,
        a: ["a", "b", nasty, ""],
        n: 18446744073709551615n,
        t: new Date("2024-05-06T07:08:09.123Z"),
        missing: null,
      },
    });
    const { data } = await result.json<Record<string, unknown>>();
    expect(data).toEqual([
      { s: nasty, a: ["a", "b", nasty, ""], n: "18446744073709551615", t: "2024-05-06 07:08:09.123", missing: null },
    ]);
  });

  it("applies clickhouse_settings to one query only", async () => {
    const setting = async (settings: Record<string, number>) => {
      const query = "SELECT getSetting('max_block_size') AS v";
      const rows = await (await ch.query({ query, format: "JSONEachRow", clickhouse_settings: settings })).json<{
        v: number | string;
      }>();
      return Number(rows[0]?.v);
    };
    expect(await setting({ max_block_size: 1234 })).toBe(1234);
    expect(await setting({})).not.toBe(1234);

    // On commands too, without touching a CREATE TABLE's own storage SETTINGS.
    await ch.command({
      query: "CREATE TABLE mutated (n UInt8) ENGINE = MergeTree ORDER BY n SETTINGS index_granularity = 64",
      clickhouse_settings: { max_threads: 1 },
    });
    await ch.insert({ table: "mutated", values: [{ n: 1 }, { n: 2 }], format: "JSONEachRow" });
    await ch.command({ query: "ALTER TABLE mutated DELETE WHERE n = 1", clickhouse_settings: { mutations_sync: "2" } });
    expect(await count(ch, "mutated")).toBe(1);
  });

  it("uses the client's database", async () => {
    await ch.command({ query: "CREATE DATABASE other" });
    const other = client(server.url, { database: "other" });
    await other.command({ query: "CREATE TABLE here (n UInt8) ENGINE = MergeTree ORDER BY n" });
    await other.insert({ table: "here", values: [{ n: 1 }], format: "JSONEachRow" });
    expect(await count(ch, "other.here")).toBe(1);
    const db = await (await ch.query({ query: "SELECT currentDatabase() AS d", format: "JSONEachRow" })).json();
    expect(db).toEqual([{ d: "default" }]);
  });

  it("rejects errors as ClickHouseError with the server's code", async () => {
    // The client logs every failed request; these failures are expected.
    const quiet = client(server.url, { compression: { request: true }, log: { level: ClickHouseLogLevel.OFF } });
    const unknownTable = quiet.query({ query: "SELECT * FROM no_such_table", format: "JSON" });
    await expect(unknownTable).rejects.toBeInstanceOf(ClickHouseError);
    await expect(unknownTable).rejects.toMatchObject({ code: "60", type: "UNKNOWN_TABLE" });
    await expect(quiet.command({ query: "SELEC 1" })).rejects.toMatchObject({ code: "62", type: "SYNTAX_ERROR" });
    await expect(
      quiet.insert({ table: "events", values: [{ id: "not a number" }], format: "JSONEachRow" }),
    ).rejects.toBeInstanceOf(ClickHouseError);
  });

  it("enforces the limits the query routes send: answer size, memory, time, and readonly", async () => {
    const quiet = client(server.url, { log: { level: ClickHouseLogLevel.OFF } });
    const run = (query: string, clickhouse_settings: ClickHouseSettings) =>
      quiet.query({ query, format: "JSONEachRow", clickhouse_settings }).then((r) => r.json());
    const throwing = { result_overflow_mode: "throw" } as const;
    await expect(run("SELECT number FROM numbers(100)", { ...throwing, max_result_rows: "10" })).rejects.toMatchObject({
      type: "TOO_MANY_ROWS_OR_BYTES",
    });
    await expect(
      run("SELECT toString(number) FROM numbers(100000)", { ...throwing, max_result_bytes: "1000" }),
    ).rejects.toMatchObject({ type: "TOO_MANY_ROWS_OR_BYTES" });
    await expect(
      run("SELECT uniqExact(number) FROM numbers(10000000)", { max_memory_usage: String(10 * 1024 * 1024) }),
    ).rejects.toMatchObject({ type: "MEMORY_LIMIT_EXCEEDED" });
    const started = Date.now();
    await expect(
      run("SELECT sleepEachRow(0.25) FROM numbers(20)", { max_block_size: "1", max_execution_time: 1 }),
    ).rejects.toMatchObject({ type: "TIMEOUT_EXCEEDED" });
    // Stopped after about 1 s of its 5.
    expect(Date.now() - started).toBeLessThan(4000);

    await ch.command({ query: "CREATE TABLE guarded (n UInt8) ENGINE = MergeTree ORDER BY n" });
    await ch.insert({ table: "guarded", values: [{ n: 1 }], format: "JSONEachRow" });
    const readOnly = client(server.url, {
      log: { level: ClickHouseLogLevel.OFF },
      clickhouse_settings: { readonly: "2" },
    });
    const attempts = [
      readOnly.insert({ table: "guarded", values: [{ n: 2 }], format: "JSONEachRow" }),
      readOnly.command({ query: "ALTER TABLE guarded DELETE WHERE 1" }),
      readOnly.command({ query: "TRUNCATE TABLE guarded" }),
      readOnly.command({ query: "DROP TABLE guarded" }),
      readOnly.command({ query: "CREATE TABLE planted (n UInt8) ENGINE = Memory" }),
    ];
    for (const attempt of attempts) await expect(attempt).rejects.toMatchObject({ type: "READONLY" });
    expect(await count(readOnly, "guarded")).toBe(1);
  });

  it("skips a statement whose client went away while it waited for its turn", async () => {
    await ch.command({ query: "CREATE TABLE skipped (n UInt8) ENGINE = MergeTree ORDER BY n" });
    // Statements run one at a time: this one keeps the engine busy for about a second.
    const busy = ch
      .query({ query: "SELECT sleepEachRow(0.2) FROM numbers(5)", clickhouse_settings: { max_block_size: "1" } })
      .then((r) => r.text());
    /** An INSERT sent whole over a connection of its own, and when `abandon`, that connection closed. */
    const insert = (n: number, abandon: boolean) =>
      new Promise<void>((resolve) => {
        const url = `${server.url}/?query=${encodeURIComponent("INSERT INTO skipped FORMAT JSONEachRow")}`;
        const request = httpRequest(url, { method: "POST", agent: false });
        request.on("error", () => resolve());
        request.on("response", (response) => response.resume().on("end", resolve));
        request.end(JSON.stringify({ n }), () => {
          if (abandon) setTimeout(() => request.destroy(), 200);
        });
      });
    await Promise.all([insert(1, true), insert(2, false)]);
    await busy;
    const rows = await (await ch.query({ query: "SELECT n FROM skipped", format: "JSONEachRow" })).json();
    expect(rows).toEqual([{ n: 2 }]);
    expect(server.output()).toContain(
      "skipped a statement whose client went away before its turn: INSERT INTO skipped",
    );
  });

  it("serves two writers and a reader at once with an exact final count", async () => {
    await ch.command({ query: "CREATE TABLE concurrent (w UInt8, i UInt32) ENGINE = MergeTree ORDER BY (w, i)" });
    const writer = async (w: number) => {
      const c = client(server.url);
      for (let batch = 0; batch < 20; batch++) {
        const values = Array.from({ length: 500 }, (_, i) => ({ w, i: batch * 500 + i }));
        await c.insert({ table: "concurrent", values, format: "JSONEachRow" });
      }
    };
    const reader = async () => {
      const c = client(server.url);
      for (let i = 0; i < 20; i++) expect(await count(c, "concurrent")).toBeLessThanOrEqual(20_000);
    };
    await Promise.all([writer(1), writer(2), reader()]);
    expect(await count(ch, "concurrent")).toBe(20_000);
  });
});

describe("chdb dev server keeps its data", () => {
  const dataDir = join(root, "persist");

  it("across a stop and a start, and across kill -9", async () => {
    let server = await startServer(dataDir);
    let c = client(server.url);
    await c.command({ query: "CREATE TABLE kept (n UInt32) ENGINE = MergeTree ORDER BY n" });
    await c.insert({ table: "kept", values: [{ n: 1 }, { n: 2 }], format: "JSONEachRow" });
    await server.stop("SIGTERM");
    expect(server.child.exitCode).toBe(0);

    server = await startServer(dataDir);
    c = client(server.url);
    expect(await count(c, "kept")).toBe(2);
    await c.insert({ table: "kept", values: [{ n: 3 }], format: "JSONEachRow" });
    await server.stop("SIGKILL");

    server = await startServer(dataDir);
    c = client(server.url);
    expect(await count(c, "kept")).toBe(3);
    await server.stop();
  });
});

describe("startClickHouse", () => {
  it("starts the dev server, answers ping and stops", async () => {
    const dir = join(root, "engine");
    const engine = await startClickHouse({ port: await freePort(), dataDir: dir, logFile: join(dir, "ch.log") });
    expect(await client(engine.url).ping()).toEqual({ success: true });
    await engine.stop();
    await expect(fetch(`${engine.url}/ping`)).rejects.toThrow();
  });

  it("fails with one line naming clickhouse, the cause and the log file", async () => {
    const dataDir = join(root, "locked");
    const holder = await startServer(dataDir);
    const logFile = join(root, "locked.log");
    await expect(startClickHouse({ port: await freePort(), dataDir, logFile })).rejects.toThrow(
      /^clickhouse: exited \(1\) before it was ready: .*cannot open data directory.*\(log: .*locked\.log\)$/,
    );
    await holder.stop();
  });

  it("refuses a port that is in use", async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
    const dir = join(root, "busy");
    await expect(startClickHouse({ port, dataDir: dir, logFile: join(dir, "ch.log") })).rejects.toThrow(
      new RegExp(`clickhouse: port .*${port}.* in use`),
    );
    blocker.close();
  });
});
