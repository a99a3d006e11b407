import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type ClickHouseClient, createClient } from "@clickhouse/client";
import { loadConfig } from "../src/config.ts";
import type { Impression } from "../src/impression/schema.ts";
import { provision } from "../src/provision.ts";
import { storeImpressions } from "../src/storage/impressions.ts";
import { migrate } from "../src/storage/migrations.ts";
import { repoRoot } from "../stack/paths.ts";
import { type EngineProcess, freePort, spawnLogged } from "../stack/process.ts";
import { benchAppEnv, startBenchEngines } from "./engines.ts";
import { percentile } from "./percentile.ts";
import { apiNodeArgs } from "./pm2-apps.ts";
import { formatCpu, measureCpu } from "./processes.ts";
import { sampleRss } from "./rss.ts";

/**
 * npm run bench:pipeline: events through the whole pipeline (API -> Kafka -> workers -> ClickHouse) on engines of
 * its own. Measures freshness (accepted -> visible in ClickHouse) at a steady rate, and events/s at full speed
 * from the first accepted event until all are visible. Baseline in the same run: the same rows inserted straight
 * into ClickHouse in worker-sized batches (the storage ceiling, no Kafka, no dedup).
 * BENCH_STEADY_RATE (10000), BENCH_STEADY_S (20), BENCH_FULL_EVENTS (300000), BENCH_WORKERS (2).
 */
const steadyRate = Number(process.env.BENCH_STEADY_RATE ?? 10_000);
const steadySeconds = Number(process.env.BENCH_STEADY_S ?? 20);
const fullEvents = Number(process.env.BENCH_FULL_EVENTS ?? 300_000);
const workerCount = Number(process.env.BENCH_WORKERS ?? 2);
const dataDir = join(repoRoot, ".data/bench-pipeline");
const run = randomBytes(3).toString("hex");
const BATCH = 1_000;
const IN_FLIGHT = 8;
let sequence = 0;

function event(): Impression {
  const n = sequence++;
  return { id: `${run}-${n.toString(36)}`, ts: Date.now(), userId: `user-${n % 10_000}`, adId: `ad-${n % 10}` };
}

async function post(url: string, events: Impression[]): Promise<number> {
  for (;;) {
    const response = await fetch(`${url}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(events),
    }).catch(() => undefined);
    await response?.arrayBuffer();
    if (response?.status === 202) return Date.now();
    if (response && response.status !== 503) throw new Error(`the API answered ${response.status}`);
    await sleep(50);
  }
}

/** A worker's metrics URL, from the line it logs at start (its metrics port is a free one). */
async function metricsUrl(logFile: string): Promise<string> {
  for (let waited = 0; waited < 60_000; waited += 200) {
    const found = /metrics at (http:\/\/\S+\/metrics)/.exec(readFileSync(logFile, "utf8"));
    if (found?.[1]) return found[1];
    await sleep(200);
  }
  throw new Error(`no "metrics at" line in ${logFile} after 60 s`);
}

/** Seconds spent in each pipeline step so far, summed over the workers (worker_step_duration_seconds), and batches. */
async function stepSeconds(urls: string[]): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  for (const url of urls) {
    const text = await (await fetch(url)).text();
    for (const [, step, value] of text.matchAll(/^worker_step_duration_seconds_sum\{step="([^"]+)"\} (\S+)$/gm)) {
      totals[step as string] = (totals[step as string] ?? 0) + Number(value);
    }
    const batches = /^worker_batch_events_count (\S+)$/m.exec(text);
    totals.batches = (totals.batches ?? 0) + Number(batches?.[1] ?? 0);
  }
  return totals;
}

async function count(clickhouse: ClickHouseClient): Promise<number> {
  const result = await clickhouse.query({ query: "SELECT count() AS n FROM impressions", format: "JSONEachRow" });
  const [row] = await result.json<{ n: string }>();
  return Number(row?.n ?? 0);
}

/** Inserts straight into ClickHouse, as one worker would if Kafka and Valkey cost nothing. */
async function baseline(url: string, events: number, batch: number): Promise<number> {
  const admin = createClient({ url });
  await admin.command({ query: "CREATE DATABASE IF NOT EXISTS baseline" });
  const clickhouse = createClient({ url, database: "baseline" });
  await migrate(clickhouse, { retentionDays: 30 });
  const rows = Array.from({ length: events }, event);
  const started = performance.now();
  for (let i = 0; i < rows.length; i += batch) {
    await storeImpressions(clickhouse, rows.slice(i, i + batch), { timeoutMs: 30_000 });
  }
  const seconds = (performance.now() - started) / 1000;
  await Promise.all([clickhouse.close(), admin.close()]);
  return events / seconds;
}

async function steady(url: string, clickhouse: ClickHouseClient) {
  const accepted = new Map<string, number>();
  const visibleAfter: number[] = [];
  let sending = true;
  const watcher = (async () => {
    while (sending || accepted.size > 0) {
      const ids = [...accepted.keys()];
      if (ids.length > 0) {
        const result = await clickhouse.query({
          query: "SELECT id FROM impressions WHERE id IN {ids:Array(String)}",
          query_params: { ids },
          format: "JSONCompactEachRow",
        });
        const now = Date.now();
        for (const [id] of await result.json<[string]>()) {
          visibleAfter.push(now - (accepted.get(id) ?? now));
          accepted.delete(id);
        }
      }
      await sleep(50);
    }
  })();
  const perTick = Math.max(1, Math.round(steadyRate / 20));
  const started = Date.now();
  const sends: Promise<void>[] = [];
  for (let tick = 0; Date.now() - started < steadySeconds * 1000; tick++) {
    const due = started + tick * 50;
    if (due > Date.now()) await sleep(due - Date.now());
    const events = Array.from({ length: perTick }, event);
    sends.push(post(url, events).then((at) => void accepted.set(events[0]?.id ?? "", at)));
  }
  await Promise.all(sends);
  sending = false;
  await watcher;
  visibleAfter.sort((a, b) => a - b);
  return { p50: percentile(visibleAfter, 0.5), p99: percentile(visibleAfter, 0.99), samples: visibleAfter.length };
}

async function fullSpeed(url: string, clickhouse: ClickHouseClient, before: number) {
  const batches = Math.ceil(fullEvents / BATCH);
  let next = 0;
  let firstAccepted = Number.POSITIVE_INFINITY;
  let lastAccepted = 0;
  const sender = async () => {
    for (let b = next++; b < batches; b = next++) {
      const at = await post(url, Array.from({ length: Math.min(BATCH, fullEvents - b * BATCH) }, event));
      firstAccepted = Math.min(firstAccepted, at);
      lastAccepted = Math.max(lastAccepted, at);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, sender));
  while ((await count(clickhouse)) < before + fullEvents) await sleep(50);
  const visible = Date.now();
  return {
    endToEnd: fullEvents / ((visible - firstAccepted) / 1000),
    accepted: fullEvents / ((lastAccepted - firstAccepted) / 1000),
    drainSeconds: (visible - lastAccepted) / 1000,
  };
}

const engines = await startBenchEngines(dataDir);
const apiPort = await freePort();
const log = (name: string) => join(dataDir, "logs", `${name}.log`);
const env = benchAppEnv(engines, apiPort, { KAFKA_PARTITIONS: "8" });
await provision(loadConfig(env));
const config = loadConfig(env);

console.log("[bench] baseline: straight ClickHouse inserts ...");
const ceiling = await baseline(engines.env.CLICKHOUSE_URL, 200_000, config.WORKER_BATCH_MAX_EVENTS);

const children: EngineProcess[] = [
  spawnLogged(process.execPath, [...apiNodeArgs(), join(repoRoot, "src/api/main.ts")], { env, logFile: log("api") }),
  ...Array.from({ length: workerCount }, (_, i) =>
    // At info level a worker logs where its metrics are, which give each step's time.
    spawnLogged(process.execPath, [join(repoRoot, "src/worker/main.ts")], {
      env: { ...env, LOG_LEVEL: "info" },
      logFile: log(`worker-${i}`),
    }),
  ),
];
const url = `http://127.0.0.1:${apiPort}`;
for (let ok = false; !ok; await sleep(200))
  ok = await fetch(`${url}/healthz`).then(
    (r) => r.ok,
    () => false,
  );
const clickhouse = createClient({ url: engines.env.CLICKHOUSE_URL });
await post(url, [event()]);
while ((await count(clickhouse)) < 1) await sleep(100);

const rss = sampleRss(children.map((c) => c.child.pid as number));
console.log(`[bench] steady: ${steadyRate} events/s for ${steadySeconds}s ...`);
const fresh = await steady(url, clickhouse);
console.log(`[bench] full speed: ${fullEvents} events ...`);
const [apiChild, ...workerChildren] = children.map((c) => c.child.pid as number);
const cpu = measureCpu({
  api: [apiChild as number],
  ...Object.fromEntries(workerChildren.map((pid, i) => [`worker ${i}`, [pid]])),
  kafka: [engines.pids.kafka],
  valkey: [engines.pids.valkey],
  clickhouse: [engines.pids.clickhouse],
  "load generator (this process)": [process.pid],
});
const workerMetrics = await Promise.all(children.slice(1).map((c) => metricsUrl(c.logFile)));
const stepsBefore = await stepSeconds(workerMetrics);
const fullStarted = performance.now();
const full = await fullSpeed(url, clickhouse, await count(clickhouse));
const cpuSeconds = cpu.stop();
const fullSeconds = (performance.now() - fullStarted) / 1000;
const stepsAfter = await stepSeconds(workerMetrics);
const steps = Object.fromEntries(
  Object.entries(stepsAfter).map(([step, total]) => [step, Number((total - (stepsBefore[step] ?? 0)).toFixed(2))]),
);

const [apiRss = 0, ...workerRss] = rss.stop();
await clickhouse.close();
await Promise.all(children.map((c) => c.stop(30_000)));
await engines.stop();

const figures = {
  workers: workerCount,
  baselineClickHouseInsertsPerSecond: Math.round(ceiling),
  steadyRate,
  freshnessP50Ms: fresh.p50,
  freshnessP99Ms: fresh.p99,
  freshnessSamples: fresh.samples,
  fullSpeedEvents: fullEvents,
  fullSpeedEndToEndPerSecond: Math.round(full.endToEnd),
  fullSpeedAcceptedPerSecond: Math.round(full.accepted),
  drainAfterLastAcceptSeconds: Number(full.drainSeconds.toFixed(1)),
  peakRssMb: { api: Math.round(apiRss), workers: workerRss.map(Math.round) },
  fullSpeedWorkerStepSeconds: steps,
  fullSpeedCpuSeconds: Object.fromEntries(Object.entries(cpuSeconds).map(([name, s]) => [name, Number(s.toFixed(2))])),
  fullSpeedCpuMicrosPerEvent: Object.fromEntries(
    Object.entries(cpuSeconds).map(([name, s]) => [name, Number(((s * 1e6) / fullEvents).toFixed(1))]),
  ),
};
console.log(JSON.stringify(figures, null, 2));
console.log(`[bench] CPU at full speed, ${fullEvents} events: ${formatCpu(cpuSeconds, fullSeconds)}`);
const { batches = 0, ...stepTimes } = steps;
console.log(
  `[bench] worker steps at full speed, summed over ${workerCount} workers (${batches} batches): ` +
    Object.entries(stepTimes)
      .sort((a, b) => b[1] - a[1])
      .map(([step, seconds]) => `${step} ${seconds.toFixed(2)} s`)
      .join(", "),
);
