/**
 * GET /stats latency over 10,000,000 stored impressions (1,000 ads, 24 hours), through the real HTTP
 * API (API_ROLE=query, in-process Fastify), side by side with the naive query: a count over the raw
 * table for the same window, served by the same app. Sequential requests, so each figure is one
 * request's latency without queueing. Then the floor: a `SELECT 1` and one 30-second range read of the raw
 * table, through the API and inside ClickHouse (X-ClickHouse-Summary's elapsed_ns), since any exact answer
 * costs at least one such read. Prints Markdown tables for docs/BENCHMARKS.md.
 *
 *   npm run bench:stats        (REQUESTS=200 to change the sample size)
 *
 * Starts its own ClickHouse under .data/bench-stats on port 38124 and reuses the loaded data while it
 * still covers the next minutes; otherwise it regenerates it inside ClickHouse (INSERT ... SELECT).
 */
import { join } from "node:path";
import type { ClickHouseClient, ClickHouseSettings } from "@clickhouse/client";
import { buildApp } from "../src/api/app.ts";
import { loadConfig } from "../src/config.ts";
import { countPerAd, countPerAdQuery } from "../src/stats/queries.ts";
import { MINUTE_MS } from "../src/stats/window.ts";
import { createClickHouse } from "../src/storage/clickhouse.ts";
import { migrate } from "../src/storage/migrations.ts";
import { startClickHouse } from "../stack/clickhouse.ts";
import { repoRoot } from "../stack/paths.ts";
import { percentile } from "./percentile.ts";

const ROWS = 10_000_000;
const ADS = 1_000;
const USERS = 1_000_000;
const DATABASE = "bench_stats";
const WINDOWS = [1, 60, 1440];
const REQUESTS = Number(process.env.REQUESTS ?? 100);
const WARMUP = 10;
/** Data ends this far after loading, so windows measured in the following minutes are full. */
const AHEAD_MS = 15 * MINUTE_MS;

const dataDir = join(repoRoot, ".data", "bench-stats");
const engine = await startClickHouse({
  port: 38124,
  dataDir: join(dataDir, "clickhouse"),
  logFile: join(dataDir, "clickhouse.log"),
});
const config = loadConfig({
  ...process.env,
  CLICKHOUSE_URL: engine.url,
  CLICKHOUSE_DATABASE: DATABASE,
  API_ROLE: "query",
  LOG_LEVEL: "warn",
});
const admin = createClickHouse({ ...config, CLICKHOUSE_DATABASE: "default" });
const clickhouse = createClickHouse(config);

async function scalar(client: ClickHouseClient, query: string): Promise<number> {
  const rows = await (await client.query({ query, format: "JSONCompactEachRow" })).json<[string | number]>();
  return Number(rows[0]?.[0]);
}

/**
 * 10M rows evenly over the 24 hours ending AHEAD_MS from now, in time order as workers insert them
 * (each insert block then covers a stretch of time, not the whole day), random ads and users.
 */
async function load(): Promise<void> {
  const loadedUntil = Date.now() + AHEAD_MS;
  await admin.command({ query: `DROP DATABASE IF EXISTS ${DATABASE}` });
  await admin.command({ query: `CREATE DATABASE ${DATABASE}` });
  await migrate(clickhouse, { retentionDays: config.RETENTION_DAYS });
  const started = performance.now();
  await clickhouse.command({
    query: `INSERT INTO impressions (id, ts, ad_id, user_id)
      SELECT toString(number),
        fromUnixTimestamp64Milli(toInt64({until:Int64} - 86400000 + intDiv(number * 86400000, ${ROWS})), 'UTC'),
        concat('ad', toString(cityHash64(number, 2) % ${ADS})),
        concat('u', toString(cityHash64(number, 3) % ${USERS}))
      FROM numbers(${ROWS})`,
    query_params: { until: loadedUntil },
    clickhouse_settings: { wait_end_of_query: 1 },
  });
  console.log(`loaded ${ROWS} impressions in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function loadedRows(): Promise<{ rows: number; until: number }> {
  if ((await scalar(admin, `SELECT count() FROM system.databases WHERE name = '${DATABASE}'`)) === 0) {
    return { rows: 0, until: 0 };
  }
  if ((await scalar(admin, `SELECT count() FROM system.tables WHERE database = '${DATABASE}'`)) === 0) {
    return { rows: 0, until: 0 };
  }
  return {
    rows: await scalar(clickhouse, "SELECT count() FROM impressions"),
    until: await scalar(clickhouse, "SELECT toUnixTimestamp64Milli(max(ts)) FROM impressions"),
  };
}

interface Statement {
  query: string;
  query_params?: Record<string, unknown>;
  clickhouse_settings?: ClickHouseSettings;
}

/** The naive answer: every raw row of the window counted, as the seed design would. */
function naiveQuery(now: number, minutes: number): Statement {
  return {
    query: `SELECT ad_id, count() FROM impressions
      WHERE ts > fromUnixTimestamp64Milli({start:Int64}, 'UTC') AND ts <= fromUnixTimestamp64Milli({end:Int64}, 'UTC')
      GROUP BY ad_id`,
    query_params: { start: now - minutes * MINUTE_MS, end: now },
  };
}

async function naiveCountPerAd(now: number, minutes: number): Promise<Record<string, number>> {
  const result = await clickhouse.query({ ...naiveQuery(now, minutes), format: "JSONCompactEachRow" });
  return Object.fromEntries((await result.json<[string, string]>()).map(([ad, n]) => [ad, Number(n)]));
}

/**
 * Time inside ClickHouse alone (`elapsed_ns` of X-ClickHouse-Summary), for statements run in turn like
 * `measure`: what no API or HTTP client change can take away. The least any exact answer costs is one
 * primary-key range read: the partial minutes at the window's edges must be read at millisecond resolution.
 */
async function engineTimes(...statements: ((now: number) => Statement)[]): Promise<Latency[]> {
  const elapsed = statements.map((): number[] => []);
  for (let i = 0; i < WARMUP + REQUESTS; i++) {
    for (const [k, statement] of statements.entries()) {
      const result = await clickhouse.query({ ...statement(Date.now()), format: "JSONCompactEachRow" });
      await result.json();
      const summary = JSON.parse(String(result.response_headers["x-clickhouse-summary"])) as { elapsed_ns: string };
      if (i >= WARMUP) elapsed[k]?.push(Number(summary.elapsed_ns) / 1e6);
    }
  }
  return elapsed.map((sample) => {
    sample.sort((x, y) => x - y);
    return { p50: percentile(sample, 0.5), p99: percentile(sample, 0.99), ads: 0 };
  });
}

/** The least an answer from ClickHouse costs: any exact count includes at least one such range read. */
const rangeRead = (now: number) => naiveQuery(now, 0.5);
const selectOne = (): Statement => ({ query: "SELECT 1" });
const PROBES: Record<string, (now: number) => Statement> = { "range-read": rangeRead, "select-1": selectOne };

interface Latency {
  p50: number;
  p99: number;
  ads: number;
}

/**
 * Sequential requests to the given URLs in turn (a, b, a, b, ...): side-by-side figures then share
 * whatever else the machine is doing at the time.
 */
async function measure(...urls: string[]): Promise<Latency[]> {
  const latencies = urls.map((): number[] => []);
  const ads = urls.map(() => 0);
  for (let i = 0; i < WARMUP + REQUESTS; i++) {
    for (const [u, url] of urls.entries()) {
      const started = performance.now();
      const res = await fetch(url);
      const body = (await res.json()) as Record<string, unknown>;
      const elapsed = performance.now() - started;
      if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${JSON.stringify(body)}`);
      if (i >= WARMUP) latencies[u]?.push(elapsed);
      ads[u] = Object.keys(body).length;
    }
  }
  return latencies.map((sample, u) => {
    sample.sort((x, y) => x - y);
    return { p50: percentile(sample, 0.5), p99: percentile(sample, 0.99), ads: ads[u] ?? 0 };
  });
}

try {
  const stored = await loadedRows();
  if (stored.rows === ROWS && stored.until > Date.now() + 5 * MINUTE_MS) {
    console.log(`reusing ${ROWS} impressions in ${dataDir}`);
    await migrate(clickhouse, { retentionDays: config.RETENTION_DAYS });
  } else {
    await load();
  }

  // Same answer from both queries at the same instant, or the comparison means nothing.
  const now = Date.now();
  for (const minutes of WINDOWS) {
    const [fast, naive] = [
      await countPerAd(clickhouse, { now, minutes, adIds: [] }),
      await naiveCountPerAd(now, minutes),
    ];
    if (JSON.stringify(Object.entries(fast).sort()) !== JSON.stringify(Object.entries(naive).sort())) {
      throw new Error(`rollup and naive counts differ for N=${minutes}`);
    }
  }

  const app = await buildApp({ config, clickhouse, checks: {}, logger: false });
  app.get<{ Querystring: { timeWindowMinutes: string } }>("/naive-stats", async (request) =>
    naiveCountPerAd(Date.now(), Number(request.query.timeWindowMinutes)),
  );
  app.get<{ Params: { name: string } }>("/probe/:name", async (request) => {
    const statement = PROBES[request.params.name];
    if (!statement) throw new Error(`no probe ${request.params.name}`);
    return (await clickhouse.query({ ...statement(Date.now()), format: "JSONCompactEachRow" })).json();
  });
  const base = await app.listen({ host: "127.0.0.1", port: 0 });

  const rows: string[] = [];
  let speedupAtDay = 0;
  let atDay: [Latency, Latency] | undefined;
  let worstP99 = 0;
  for (const minutes of WINDOWS) {
    const [fast, naive] = (await measure(
      `${base}/stats?timeWindowMinutes=${minutes}`,
      `${base}/naive-stats?timeWindowMinutes=${minutes}`,
    )) as [Latency, Latency];
    const speedup = naive.p50 / fast.p50;
    if (minutes === 1440) {
      speedupAtDay = speedup;
      atDay = [fast, naive];
    }
    worstP99 = Math.max(worstP99, fast.p99);
    rows.push(
      `| ${minutes} | ${fast.ads} | ${fast.p50.toFixed(1)} | ${fast.p99.toFixed(1)} | ${naive.p50.toFixed(1)} | ${naive.p99.toFixed(1)} | ${speedup.toFixed(1)}x |`,
    );
  }
  const extras: string[] = [];
  for (const path of [
    "/stats/reach?timeWindowMinutes=60",
    "/stats/timeseries?timeWindowMinutes=1440&adId=ad1&adId=ad2",
  ]) {
    const [r] = (await measure(`${base}${path}`)) as [Latency];
    extras.push(`| \`GET ${path}\` | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`);
  }
  const throughApi = [...(atDay ?? []), ...(await measure(`${base}/probe/range-read`, `${base}/probe/select-1`))];
  await app.close();
  const inside = await engineTimes(
    (now) => countPerAdQuery({ now, minutes: 1440, adIds: [] }),
    (now) => naiveQuery(now, 1440),
    rangeRead,
    selectOne,
  );

  console.log(
    `\n${ROWS.toLocaleString("en")} impressions, ${ADS} ads, 24 h; ${REQUESTS} sequential requests per row after ${WARMUP} warm-up\n`,
  );
  console.log(
    "| N (min) | ads in answer | /stats p50 ms | /stats p99 ms | naive p50 ms | naive p99 ms | speed-up (p50) |",
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const row of rows) console.log(row);
  console.log("\n| other query | p50 ms | p99 ms |\n|---|---|---|");
  for (const row of extras) console.log(row);
  console.log(
    "\n| N=1440, and the floor | through the API p50 ms | inside ClickHouse p50 ms | inside ClickHouse p99 ms |\n|---|---|---|---|",
  );
  const names = ["/stats", "naive query", "one 30 s range read of the raw table", "`SELECT 1`"];
  for (const [k, name] of names.entries()) {
    const api = throughApi[k];
    const engineTime = inside[k];
    console.log(`| ${name} | ${api?.p50.toFixed(1)} | ${engineTime?.p50.toFixed(1)} | ${engineTime?.p99.toFixed(1)} |`);
  }
  const ceiling = (t: (Latency | undefined)[]) => ((t[1]?.p50 ?? 0) / (t[2]?.p50 ?? 1)).toFixed(1);
  console.log(
    `\nno exact query can beat naive / one range read: ${ceiling(throughApi)}x through the API, ${ceiling(inside)}x inside ClickHouse`,
  );
  const pass = worstP99 < 50 && speedupAtDay >= 10;
  console.log(
    `\ntarget p99 < 50 ms for every N and >= 10x the naive query at N=1440: ${pass ? "met" : "NOT met"} (worst p99 ${worstP99.toFixed(1)} ms, ${speedupAtDay.toFixed(1)}x at N=1440)`,
  );
  process.exitCode = pass ? 0 : 1;
} finally {
  await Promise.allSettled([clickhouse.close(), admin.close()]);
  await engine.stop();
}
