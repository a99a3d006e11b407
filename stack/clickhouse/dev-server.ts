/**
 * A development stand-in for `clickhouse server`: the ClickHouse engine from the `chdb` package behind
 * ClickHouse's HTTP interface, so the app's official `@clickhouse/client` talks to it unchanged.
 * One process per data directory (chdb locks it), one Session for the process's lifetime.
 *
 *   CHDB_DATA_DIR=.data/clickhouse CHDB_PORT=8123 node stack/clickhouse/dev-server.ts
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { Session } from "chdb";
import chdbPackage from "chdb/package.json" with { type: "json" };

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);

/** URL parameters of the HTTP interface that are not ClickHouse settings (the rest go into SETTINGS). */
const HTTP_PARAMS = new Set([
  "query",
  "query_id",
  "database",
  "default_format",
  "session_id",
  "session_timeout",
  "session_check",
  "user",
  "password",
  "quota_key",
  "role",
  "compress",
  "decompress",
  "enable_http_compression",
  "http_zlib_compression_level",
  "wait_end_of_query",
  "buffer_size",
  "send_progress_in_http_headers",
  "http_headers_progress_interval_ms",
]);

const CONTENT_TYPES: [RegExp, string][] = [
  [/^JSON/, "application/json; charset=UTF-8"],
  [/^(TabSeparated|TSV)/, "text/tab-separated-values; charset=UTF-8"],
  [/^CSV/, "text/csv; charset=UTF-8"],
];

/** An error in ClickHouse's shape: the client parses `Code: N. DB::Exception: msg (TYPE)` into ClickHouseError. */
class ClickHouseException extends Error {
  readonly code: number;
  constructor(code: number, type: string, message: string) {
    super(`Code: ${code}. DB::Exception: ${message}. (${type})`);
    this.code = code;
  }
}

interface Statement {
  sql: string;
  params: Record<string, string | null>;
  database: string;
  format: string;
  /** Whether the HTTP client went away while the statement waited for its turn. */
  clientGone(): boolean;
}

export interface DevServer {
  url: string;
  close(): Promise<void>;
}

export async function startDevServer(options: { dataDir: string; port: number; host?: string }): Promise<DevServer> {
  const session = openSession(resolve(options.dataDir));
  const engine = serialEngine(session);
  const server = createServer((req, res) => {
    handle(engine, req, res).catch((err: unknown) => sendError(res, err));
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(options.port, host, ok);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    async close() {
      const closed = new Promise((ok) => server.close(ok));
      // Let accepted statements finish: closing the session under a running one aborts the engine.
      await engine.idle();
      server.closeAllConnections();
      await closed;
      await engine.idle();
      session.close();
    },
  };
}

function openSession(dataDir: string): Session {
  try {
    return new Session(dataDir);
  } catch (err) {
    // libchdb prints its reason (e.g. the lock on `status`) to stderr just before.
    throw new Error(`cannot open data directory ${dataDir}, is another server using it? (${(err as Error).message})`);
  }
}

/**
 * libchdb keeps query parameters in process-global state and a Session is one connection, so every
 * statement runs alone, in arrival order. That also makes the per-request `USE database` safe.
 * A statement whose client went away while it waited is skipped (a real server cancels it); one that runs
 * cannot be stopped (chdb has no cancel), only bounded by the settings it carries (max_execution_time).
 */
function serialEngine(session: Session) {
  let tail: Promise<unknown> = Promise.resolve();
  let currentDatabase = "default";
  const run = async ({ sql, params, database, format, clientGone }: Statement) => {
    if (clientGone()) {
      console.warn(`skipped a statement whose client went away before its turn: ${sql.slice(0, 80)}`);
      throw new ClickHouseException(394, "QUERY_WAS_CANCELLED", "the client closed the connection before its turn");
    }
    if (database !== currentDatabase) {
      await session.queryAsync(`USE ${quoteIdentifier(database)}`);
      currentDatabase = database;
    }
    try {
      return Object.keys(params).length > 0
        ? await session.queryBindAsync(sql, params, { format })
        : await session.queryAsync(sql, { format });
    } finally {
      // A client's own USE would otherwise stick for every later request.
      if (/^\s*USE\s/i.test(sql)) currentDatabase = "";
    }
  };
  return {
    run(statement: Statement) {
      const result = tail.then(() => run(statement));
      tail = result.catch(() => {});
      return result;
    },
    /** Resolves once nothing is running or queued. */
    async idle() {
      let seen: Promise<unknown>;
      do {
        seen = tail;
        await seen;
      } while (seen !== tail);
    },
  };
}

async function handle(engine: ReturnType<typeof serialEngine>, req: IncomingMessage, res: ServerResponse) {
  let gone = false;
  res.once("close", () => {
    if (!res.writableFinished) gone = true;
  });
  const url = new URL(req.url ?? "/", "http://localhost");
  const search = url.searchParams;
  if (url.pathname === "/ping" || (url.pathname === "/" && req.method !== "POST" && !search.has("query"))) {
    res.writeHead(200, { "Content-Type": "text/plain; charset=UTF-8" }).end("Ok.\n");
    return;
  }
  if (url.pathname !== "/") {
    res.writeHead(404, { "Content-Type": "text/plain; charset=UTF-8" }).end(`no handler for ${url.pathname}\n`);
    return;
  }
  if (req.headers["content-type"]?.startsWith("multipart/")) {
    throw new ClickHouseException(
      48,
      "NOT_IMPLEMENTED",
      "multipart query parameters are not supported by the dev server",
    );
  }

  const body = await readBody(req);
  const urlQuery = search.get("query");
  // Like the real server: the URL's query, then the body (for an INSERT, its data).
  const statement = urlQuery ?? body;
  const format = /\bFORMAT\s+(\w+)\s*;?\s*$/i.exec(statement)?.[1] ?? search.get("default_format") ?? "TabSeparated";
  const withSettings = addSettings(statement, settingsClause(search), format);
  const sql = urlQuery !== null && body.length > 0 ? `${withSettings}\n${body}` : withSettings;

  const params: Record<string, string | null> = {};
  for (const [key, value] of search) {
    if (key.startsWith("param_")) params[key.slice("param_".length)] = bindableValue(value);
  }
  const result = await engine.run({
    sql,
    params,
    database: search.get("database") ?? "default",
    format,
    clientGone: () => gone,
  });

  let output = Buffer.from(result.bytes());
  const summary = {
    read_rows: String(result.rowsRead),
    read_bytes: String(result.bytesRead),
    result_bytes: String(output.length),
    elapsed_ns: String(Math.round(result.elapsed * 1e9)),
  };
  const headers: Record<string, string> = {
    "Content-Type": CONTENT_TYPES.find(([re]) => re.test(format))?.[1] ?? "text/plain; charset=UTF-8",
    "X-ClickHouse-Format": format,
    "X-ClickHouse-Summary": JSON.stringify(summary),
  };
  const queryId = search.get("query_id");
  if (queryId) headers["X-ClickHouse-Query-Id"] = queryId;
  if (search.get("enable_http_compression") === "1" && /\bgzip\b/.test(req.headers["accept-encoding"] ?? "")) {
    output = await gzipAsync(output);
    headers["Content-Encoding"] = "gzip";
  }
  res.writeHead(200, headers).end(output);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  const encoding = req.headers["content-encoding"];
  if (encoding === undefined || encoding === "identity") return raw.toString("utf8");
  if (encoding !== "gzip") {
    throw new ClickHouseException(48, "NOT_IMPLEMENTED", `Content-Encoding ${encoding} is not supported (only gzip)`);
  }
  try {
    return (await gunzipAsync(raw)).toString("utf8");
  } catch (err) {
    throw new ClickHouseException(
      271,
      "CANNOT_DECOMPRESS",
      `cannot gunzip the request body: ${(err as Error).message}`,
    );
  }
}

function settingsClause(search: URLSearchParams): string {
  const settings: string[] = [];
  for (const [key, value] of search) {
    if (HTTP_PARAMS.has(key) || key.startsWith("param_")) continue;
    if (!/^\w+$/.test(key)) throw new ClickHouseException(115, "UNKNOWN_SETTING", `invalid setting name '${key}'`);
    // A quoted value suits every setting type: ClickHouse parses it as the setting's own type.
    settings.push(`${key} = ${quoteString(value)}`);
  }
  return settings.join(", ");
}

/**
 * Per-request settings go into the statement, never a SET on the shared session (that would outlive the request).
 * An INSERT takes them before its data (`INSERT INTO t SETTINGS k=v FORMAT F`); any other statement after
 * FORMAT, which also keeps them apart from a CREATE TABLE's own storage SETTINGS.
 */
function addSettings(statement: string, settings: string, format: string): string {
  if (settings === "") return statement;
  if (/^\s*INSERT\s/i.test(statement)) {
    const data = /\s(FORMAT\s+\w+|VALUES\b)/i.exec(statement);
    if (!data) return `${statement} SETTINGS ${settings}`;
    return `${statement.slice(0, data.index)} SETTINGS ${settings}${statement.slice(data.index)}`;
  }
  const trimmed = statement.replace(/[\s;]+$/, "");
  const formatted = /\bFORMAT\s+\w+$/i.test(trimmed) ? trimmed : `${trimmed} FORMAT ${format}`;
  return `${formatted} SETTINGS ${settings}`;
}

const UNESCAPES: Record<string, string> = { "\\": "\\", t: "\t", n: "\n", r: "\r", "0": "\0", b: "\b", f: "\f" };

/**
 * The client sends parameter values already in ClickHouse's escaped text form, and chdb escapes strings
 * once more before binding. Undo the client's escaping so the engine sees what a real server would.
 * A `\'` inside a quoted literal (an Array or Map element) becomes `''`: chdb leaves quotes alone, and a
 * backslash before one would be doubled.
 */
function bindableValue(value: string): string | null {
  if (value === "\\N") return null;
  let out = "";
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const char = value.charAt(i);
    if (char === "'") quoted = !quoted;
    if (char !== "\\" || i + 1 === value.length) {
      out += char;
      continue;
    }
    const next = value.charAt(++i);
    if (next === "'") out += quoted ? "''" : "'";
    else out += UNESCAPES[next] ?? `\\${next}`;
  }
  return out;
}

function quoteString(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll("\\", "\\\\").replaceAll("`", "\\`")}\``;
}

function sendError(res: ServerResponse, err: unknown) {
  const error = err as { message?: string; code?: unknown; clickhouseCode?: number };
  const message = String(error.message ?? err);
  const code =
    error.clickhouseCode ?? (typeof error.code === "number" ? error.code : Number(/^Code: (\d+)/.exec(message)?.[1]));
  const text = Number.isInteger(code) ? message : `Code: 1001. DB::Exception: ${message}. (STD_EXCEPTION)`;
  res
    .writeHead(httpStatus(code), {
      "Content-Type": "text/plain; charset=UTF-8",
      "X-ClickHouse-Exception-Code": String(Number.isInteger(code) ? code : 1001),
    })
    .end(`${text}\n`);
}

/** The statuses a real server uses for the common cases: bad SQL 400, missing table or database 404. */
function httpStatus(code: number | undefined): number {
  if (code === 62 || code === 115 || code === 456 || code === 457) return 400;
  if (code === 60 || code === 81) return 404;
  return 500;
}

async function main() {
  const dataDir = process.env.CHDB_DATA_DIR;
  if (!dataDir) throw new Error("CHDB_DATA_DIR is required (the engine's data directory)");
  const port = Number(process.env.CHDB_PORT ?? 8123);
  const host = process.env.CHDB_HOST ?? "127.0.0.1";
  const server = await startDevServer({ dataDir, port, host });
  console.log(`clickhouse dev server (chdb ${chdbPackage.version}) listening on ${server.url} data=${dataDir}`);
  const shutdown = () => {
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`clickhouse dev server: shutdown failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(`clickhouse dev server: ${(err as Error).message}`);
    process.exit(1);
  });
}
