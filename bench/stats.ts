/**
 * Does the cost of GET /stats grow with the stored data? The same queries over 10M and over 100M stored
 * impressions (1,000 ads, 24 hours; bench/stats-data.ts), in one run, through the real HTTP API (API_ROLE=query,
 * in-process Fastify, one app per database), side by side with the naive query: a count over the raw table for
 * the same window, served by the same apps. Sequential requests, each figure one request's latency without
 * queueing; the requests of one row alternate between the two databases, so both share whatever else the
 * machine does meanwhile. Prints Markdown tables for docs/BENCHMARKS.md and a verdict per target.
 *
 *   npm run bench:stats        (REQUESTS=400 to change the sample size)
 *
 * BENCH_COMPARE_TREE=<paths of other checkouts, comma-separated, their npm packages installed> then measures /stats
 * over 100M as each of them answers it, beside this checkout's: each its own query API process over the same rows
 * in a database of its own schema (bench/stats-compare.ts), requests alternating between them.
 *
 * Starts its own ClickHouse under .data/bench-stats on port 38124 and reuses the loaded data while it still
 * covers the next minutes; otherwise it regenerates it inside ClickHouse (about 100 s on 2 cores, 2 GB).
 */
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { buildApp } from "../src/api/app.ts";
import { loadConfig } from "../src/config.ts";
import { countPerAd } from "../src/stats/queries.ts";
import { plainRows } from "../src/stats/reader.ts";
import { responses, statsQuerySchema } from "../src/stats/schemas.ts";
import { MINUTE_MS } from "../src/stats/window.ts";
import { createClickHouse } from "../src/storage/clickhouse.ts";
import { startClickHouse } from "../stack/clickhouse.ts";
import { repoRoot } from "../stack/paths.ts";
import { percentile } from "./percentile.ts";
import { type ComparedApi, startComparedApis } from "./stats-compare.ts";
import { ADS, DATASETS, type Dataset, prepareDatasets } from "./stats-data.ts";

const WINDOWS = [1, 60, 1440];
const REACH_WINDOWS = [1, 60];
const REQUESTS = Number(process.env.REQUESTS ?? 200);
const compareTrees = (process.env.BENCH_COMPARE_TREE ?? "").split(",").filter((tree) => tree !== "");
/** For the queries that scan an hour or a day of raw rows, up to seconds each over 100M. */
const SCAN_REQUESTS = Math.max(20, Math.round(REQUESTS / 5));
const WARMUP = 10;
/** The issue's bound: p99 over 100M at most this many times p99 over 10M. */
const MAX_GROWTH = 1.5;
/** "No slower than the naive query": the p50s of alternating requests, within this share of each other. */
const SAME_WITHIN = 0.05;

const dataDir = join(repoRoot, ".data", "bench-stats");
const engine = await startClickHouse({
  port: 38124,
  dataDir: join(dataDir, "clickhouse"),
  logFile: join(dataDir, "clickhouse.log"),
});
const configOf = (dataset: Dataset) =>
  loadConfig({
    ...process.env,
    CLICKHOUSE_URL: engine.url,
    CLICKHOUSE_DATABASE: dataset.database,
    API_ROLE: "query",
    AUTH: "off",
    // Sequential requests from one IP, as fast as they are answered: the per-IP limit would be what is measured.
    QUERY_RATE_PER_IP: "0",
    LOG_LEVEL: "warn",
  });
let compared: ComparedApi[] = [];
const admin = createClickHouse({ ...configOf(DATASETS[0] as Dataset), CLICKHOUSE_DATABASE: "default" });
const clients = new Map(DATASETS.map((d) => [d, createClickHouse(configOf(d))]));
const clientOf = (dataset: Dataset) => clients.get(dataset) as ClickHouseClient;

/** The naive answer: every raw row of the window counted, as the seed design would. */
async function naiveCountPerAd(client: ClickHouseClient, now: number, minutes: number) {
  const result = await client.query({
    query: `SELECT ad_id, count() FROM impressions
      WHERE ts > fromUnixTimestamp64Milli({start:Int64}, 'UTC') AND ts <= fromUnixTimestamp64Milli({end:Int64}, 'UTC')
      GROUP BY ad_id`,
    query_params: { start: now - minutes * MINUTE_MS, end: now },
    format: "JSONCompactEachRow",
  });
  return Object.fromEntries((await result.json<[string, string]>()).map(([ad, n]) => [ad, Number(n)]));
}

interface Latency {
  p50: number;
  p99: number;
}

/**
 * Sequential requests to the given URLs in turn (a, b, a, b, ...): side-by-side figures then share
 * whatever else the machine is doing at the time.
 */
async function measure(requests: number, ...urls: string[]): Promise<Latency[]> {
  const latencies = urls.map((): number[] => []);
  for (let i = 0; i < WARMUP + requests; i++) {
    for (const [u, url] of urls.entries()) {
      const started = performance.now();
      const res = await fetch(url);
      const body = await res.json();
      const elapsed = performance.now() - started;
      if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${JSON.stringify(body)}`);
      if (i >= WARMUP) latencies[u]?.push(elapsed);
    }
  }
  return latencies.map((sample) => {
    sample.sort((x, y) => x - y);
    return { p50: percentile(sample, 0.5), p99: percentile(sample, 0.99) };
  });
}

/** The API over one dataset, with the naive query at /naive-stats: the same query and answer schemas as /stats. */
async function queryApp(dataset: Dataset): Promise<FastifyInstance> {
  const client = clientOf(dataset);
  const config = configOf(dataset);
  const app = await buildApp({ config, clickhouse: client, checks: {}, logger: false });
  app
    .withTypeProvider<ZodTypeProvider>()
    .get(
      "/naive-stats",
      { schema: { querystring: statsQuerySchema(config.RETENTION_DAYS), response: { 200: responses.counts } } },
      async ({ query }) => naiveCountPerAd(client, Date.now(), query.timeWindowMinutes),
    );
  return app;
}

const fixed = (ms: number) => ms.toFixed(1);
const times = (x: number) => `${x.toFixed(2)}x`;

try {
  const state = await prepareDatasets(admin, clientOf, configOf(DATASETS[0] as Dataset).RETENTION_DAYS);

  // Same answer from /stats and the naive query at the same instant, or the comparison means nothing.
  const now = Date.now();
  for (const dataset of DATASETS) {
    for (const minutes of WINDOWS) {
      const fast = await countPerAd(plainRows(clientOf(dataset)), { now, minutes, adIds: [] });
      const naive = await naiveCountPerAd(clientOf(dataset), now, minutes);
      if (JSON.stringify(Object.entries(fast).sort()) !== JSON.stringify(Object.entries(naive).sort())) {
        throw new Error(`/stats and naive counts differ for N=${minutes} over ${dataset.label}`);
      }
    }
  }

  const apps = await Promise.all(DATASETS.map(queryApp));
  const bases = await Promise.all(apps.map((app) => app.listen({ host: "127.0.0.1", port: 0 })));
  /** The path's latency over each dataset, requests alternating between them. */
  const overBoth = async (requests: number, ...paths: string[]) =>
    (await measure(requests, ...paths.flatMap((path) => bases.map((base) => `${base}${path}`)))) as [
      Latency,
      Latency,
      ...Latency[],
    ];

  const rows: { query: string; minutes: number; requests: number; small: Latency; large: Latency }[] = [];
  for (const minutes of WINDOWS) {
    const stats = `/stats?timeWindowMinutes=${minutes}`;
    const naive = `/naive-stats?timeWindowMinutes=${minutes}`;
    // Side by side with /stats, but for the day the naive count takes up to seconds over 100M: fewer samples.
    const naiveRequests = minutes < 1440 ? REQUESTS : SCAN_REQUESTS;
    const [small, large, naiveSmall, naiveLarge] = (
      minutes < 1440
        ? await overBoth(REQUESTS, stats, naive)
        : [...(await overBoth(REQUESTS, stats)), ...(await overBoth(naiveRequests, naive))]
    ) as [Latency, Latency, Latency, Latency];
    rows.push({ query: "/stats", minutes, requests: REQUESTS, small, large });
    rows.push({ query: "naive count", minutes, requests: naiveRequests, small: naiveSmall, large: naiveLarge });
  }
  for (const minutes of REACH_WINDOWS) {
    const requests = minutes < 60 ? REQUESTS : SCAN_REQUESTS;
    const [small, large] = await overBoth(requests, `/stats/reach?timeWindowMinutes=${minutes}`);
    rows.push({ query: "/stats/reach", minutes, requests, small, large });
  }
  const [tsSmall, tsLarge] = await overBoth(REQUESTS, "/stats/timeseries?timeWindowMinutes=1440&adId=ad1&adId=ad2");
  rows.push({ query: "/stats/timeseries (2 ads)", minutes: 1440, requests: REQUESTS, small: tsSmall, large: tsLarge });
  await Promise.all(apps.map((app) => app.close()));

  const comparedRows: { minutes: number; latencies: Latency[] }[] = [];
  if (compareTrees.length > 0) {
    const large = DATASETS[1] as Dataset;
    const clientFor = (database: string) => createClickHouse({ ...configOf(large), CLICKHOUSE_DATABASE: database });
    compared = await startComparedApis(admin, clientFor, engine.url, large, compareTrees, join(dataDir, "logs"));
    for (const minutes of WINDOWS) {
      const urls = compared.map(({ url }) => `${url}/stats?timeWindowMinutes=${minutes}`);
      comparedRows.push({ minutes, latencies: await measure(REQUESTS, ...urls) });
    }
  }

  const [small, large] = DATASETS as [Dataset, Dataset];
  console.log(`\n${ADS} ads, 24 h; sequential requests per dataset after ${WARMUP} warm-up`);
  for (const line of state) console.log(`- ${line}`);
  console.log(
    `\n| query | N (min) | requests | ${small.label} p50 ms | ${small.label} p99 ms | ${large.label} p50 ms | ${large.label} p99 ms | p50 ${large.label}/${small.label} | p99 ${large.label}/${small.label} |`,
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(
      `| ${r.query} | ${r.minutes} | ${r.requests} | ${fixed(r.small.p50)} | ${fixed(r.small.p99)} | ${fixed(r.large.p50)} | ${fixed(r.large.p99)} | ${times(r.large.p50 / r.small.p50)} | ${times(r.large.p99 / r.small.p99)} |`,
    );
  }

  if (compared.length > 0) {
    console.log(
      `\n/stats over ${(DATASETS[1] as Dataset).label}, each checkout's query API as its own process, requests alternating:`,
    );
    console.log(
      `\n| N (min) | ${compared.map(({ label }) => `${label} p50 ms | ${label} p99 ms`).join(" | ")} | ${compared
        .slice(1)
        .map(({ label }) => `p99 this tree / ${label}`)
        .join(" | ")} |`,
    );
    console.log(
      `|---|${compared.map(() => "---|---|").join("")}${compared
        .slice(1)
        .map(() => "---|")
        .join("")}`,
    );
    for (const { minutes, latencies } of comparedRows) {
      const [self, ...others] = latencies as [Latency, ...Latency[]];
      console.log(
        `| ${minutes} | ${latencies.map((l) => `${fixed(l.p50)} | ${fixed(l.p99)}`).join(" | ")} | ${others
          .map((other) => times(self.p99 / other.p99))
          .join(" | ")} |`,
      );
    }
  }

  const find = (query: string, minutes: number) => rows.find((r) => r.query === query && r.minutes === minutes);
  const verdicts: [string, boolean, string][] = [];
  const growth = (query: string, windows: number[]) => {
    const ratios = windows.map((m) => {
      const r = find(query, m);
      return { m, ratio: (r?.large.p99 ?? Number.NaN) / (r?.small.p99 ?? Number.NaN) };
    });
    verdicts.push([
      `${query} p99 at ${large.label} <= ${MAX_GROWTH}x its p99 at ${small.label}, N = ${windows.join(", ")}`,
      ratios.every(({ ratio }) => ratio <= MAX_GROWTH),
      ratios.map(({ m, ratio }) => `N=${m} ${times(ratio)}`).join(", "),
    ]);
  };
  growth("/stats", WINDOWS);
  const naiveDay = find("naive count", 1440);
  const naiveGrowth = (naiveDay?.large.p50 ?? 0) / (naiveDay?.small.p50 ?? 1);
  verdicts.push([
    "the naive count at N = 1440 grows with the rows",
    naiveGrowth > MAX_GROWTH,
    `p50 ${times(naiveGrowth)}`,
  ]);
  const stats1 = find("/stats", 1);
  const naive1 = find("naive count", 1);
  const sides = [
    [small.label, stats1?.small, naive1?.small],
    [large.label, stats1?.large, naive1?.large],
  ] as const;
  verdicts.push([
    `/stats at N = 1 no slower than the naive query (p50 within ${SAME_WITHIN * 100}%)`,
    sides.every(([, s, n]) => (s?.p50 ?? Number.POSITIVE_INFINITY) <= (n?.p50 ?? 0) * (1 + SAME_WITHIN)),
    sides.map(([label, s, n]) => `${label} ${fixed(s?.p50 ?? 0)} against ${fixed(n?.p50 ?? 0)} ms`).join(", "),
  ]);
  growth("/stats/reach", REACH_WINDOWS);
  for (const [i, other] of compared.slice(1).entries()) {
    const ratios = comparedRows.map(({ minutes, latencies }) => ({
      minutes,
      ratio: (latencies[0] as Latency).p99 / (latencies[i + 1] as Latency).p99,
    }));
    verdicts.push([
      `/stats p99 over ${(DATASETS[1] as Dataset).label} <= ${MAX_GROWTH}x ${other.label}'s, N = ${WINDOWS.join(", ")}`,
      ratios.every(({ ratio }) => ratio <= MAX_GROWTH),
      ratios.map(({ minutes, ratio }) => `N=${minutes} ${times(ratio)}`).join(", "),
    ]);
  }

  console.log("\n| target | verdict | measured |\n|---|---|---|");
  for (const [target, met, figures] of verdicts) console.log(`| ${target} | ${met ? "met" : "NOT met"} | ${figures} |`);
  process.exitCode = verdicts.every(([, met]) => met) ? 0 : 1;
} finally {
  await Promise.allSettled(compared.map((api) => api.process.stop()));
  await Promise.allSettled([...clients.values(), admin].map((client) => client.close()));
  await engine.stop();
}
