import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@clickhouse/client";
import autocannon from "autocannon";
import { loadConfig } from "../src/config.ts";
import { provision } from "../src/provision.ts";
import { repoRoot } from "../stack/paths.ts";
import { freePort, spawnLogged, waitUntilReady } from "../stack/process.ts";
import { benchAppEnv, startBenchEngines } from "./engines.ts";
import { median } from "./percentile.ts";
import { startPm2Apps } from "./pm2-apps.ts";
import { formatCpu, measureCpu } from "./processes.ts";
import { busyShare, machineTicks, sampleRss } from "./rss.ts";

/**
 * npm run bench:ingest-system: POST /event against the whole system as `npm start` runs it (its engines, then
 * pm2-runtime on ecosystem.config.cjs: API_INSTANCES API processes and WORKER_INSTANCES workers, one per core by
 * default, the workers consuming meanwhile), alternated with the bare node:http ceiling (bench/baseline-server.ts,
 * one process, started beside the idle system) for BENCH_ROUNDS rounds of BENCH_ROUND_S seconds, 100 connections
 * (BENCH_CONNECTIONS), a fresh random impression per request. After each /event round it waits until ClickHouse
 * holds every accepted event, so the next round starts with no backlog and the count is checked. Before the first
 * round, BENCH_WARMUP_S (30) of unmeasured /event load warm up the engines' JIT and the new topic. Each round
 * prints the share of the machine's cores busy during the load and every process's CPU, the load generator's too.
 */
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const roundS = Number(process.env.BENCH_ROUND_S ?? 15);
const warmupS = Number(process.env.BENCH_WARMUP_S ?? 30);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 100);
const dataDir = join(repoRoot, ".data/bench-system");
const runId = randomBytes(4).toString("hex");
const AD_IDS = Array.from({ length: 10 }, (_, i) => `ad-${i}`);
const HOUR_MS = 3_600_000;
const DRAIN_TIMEOUT_MS = 120_000;

let sequence = 0;
/** A random impression: a never-repeating id, one of 10 ads, one of 10k users, ts within the last hour. */
function impressionJson(): string {
  const ts = Date.now() - Math.floor(Math.random() * HOUR_MS);
  const user = Math.floor(Math.random() * 10_000);
  const ad = AD_IDS[Math.floor(Math.random() * AD_IDS.length)];
  return `{"id":"${runId}-${(sequence++).toString(36)}","ts":${ts},"userId":"user-${user}","adId":"${ad}"}`;
}

async function load(url: string, seconds = roundS) {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        setupRequest: (request) => ({ ...request, body: impressionJson() }),
      },
    ],
  });
  return {
    ok: result["2xx"],
    perSecond: result["2xx"] / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

mkdirSync(dataDir, { recursive: true });
const engines = await startBenchEngines(dataDir);
const apiPort = await freePort();
// The query API (ecosystem.config.cjs's `query` app) on a port of its own too: it idles through the run.
const env = benchAppEnv(engines, apiPort, { QUERY_PORT: String(await freePort()) });
await provision(loadConfig(env));
const apiUrl = `http://127.0.0.1:${apiPort}`;
const system = await startPm2Apps(env, dataDir, `${apiUrl}/healthz`);
const clickhouse = createClient({ url: engines.env.CLICKHOUSE_URL });
const stored = async () => {
  const result = await clickhouse.query({ query: "SELECT count() AS n FROM impressions", format: "JSONEachRow" });
  const [row] = await result.json<{ n: string }>();
  return Number(row?.n ?? 0);
};

const lines: string[] = [];
const say = (line: string) => {
  console.error(line);
  lines.push(line);
};
const ratios: number[] = [];
let accepted = 0;
let sent = 0;
/** Waits until ClickHouse holds every accepted event (or DRAIN_TIMEOUT_MS passed); the count it reached. */
async function drain(): Promise<number> {
  const started = performance.now();
  let count = await stored();
  while (count < accepted && performance.now() - started < DRAIN_TIMEOUT_MS) {
    await sleep(100);
    count = await stored();
  }
  return count;
}
try {
  if (warmupS > 0) {
    console.error(`[bench] warm-up: POST /event, ${warmupS}s, not measured ...`);
    const warmup = await load(`${apiUrl}/event`, warmupS);
    accepted += warmup.ok;
    sent += warmup.ok + warmup.non2xx + warmup.errors;
    await drain();
  }
  for (let round = 1; round <= rounds; round++) {
    const barePort = await freePort();
    const bare = spawnLogged(process.execPath, ["bench/baseline-server.ts"], {
      cwd: repoRoot,
      env: { ...process.env, PORT: String(barePort) },
      logFile: join(dataDir, "logs", "baseline.log"),
    });
    let ceiling: Awaited<ReturnType<typeof load>>;
    let ceilingBusy = 0;
    try {
      const answers = () => fetch(`http://127.0.0.1:${barePort}/`, { method: "POST", body: "{}" }).then(() => true);
      await waitUntilReady("baseline", bare, answers, 30_000);
      const bareMachine = machineTicks();
      ceiling = await load(`http://127.0.0.1:${barePort}/event`);
      ceilingBusy = busyShare(bareMachine, machineTicks());
    } finally {
      await bare.stop();
    }
    say(
      `round ${round}: bare node:http ${Math.round(ceiling.perSecond)} events/s (p50 ${ceiling.p50} ms, p99 ${ceiling.p99} ms, ` +
        `machine ${(ceilingBusy * 100).toFixed(0)}% busy)`,
    );

    const cpu = measureCpu({
      api: system.apiPids,
      "query api": system.queryPids,
      "pm2-runtime": [system.runtime.child.pid as number],
      workers: system.workerPids,
      kafka: [engines.pids.kafka],
      valkey: [engines.pids.valkey],
      clickhouse: [engines.pids.clickhouse],
      // autocannon runs in this process.
      "load generator": [process.pid],
    });
    const rss = sampleRss(system.apiPids);
    const started = performance.now();
    const machine = machineTicks();
    const event = await load(`${apiUrl}/event`);
    const machineBusy = busyShare(machine, machineTicks());
    const rssPeaks = rss.stop();
    accepted += event.ok;
    sent += event.ok + event.non2xx + event.errors;
    const drainStarted = performance.now();
    const count = await drain();
    const wall = (performance.now() - started) / 1000;
    const drained = (performance.now() - drainStarted) / 1000;
    const ratio = event.perSecond / ceiling.perSecond;
    ratios.push(ratio);
    say(
      `round ${round}: POST /event ${Math.round(event.perSecond)} events/s = ${ratio.toFixed(2)} x bare (p50 ${event.p50} ms, ` +
        `p99 ${event.p99} ms, non-2xx ${event.non2xx}, errors ${event.errors}, machine ${(machineBusy * 100).toFixed(0)}% busy); API peak RSS ` +
        `${rssPeaks.map((mb) => Math.round(mb)).join(" / ")} MB; backlog drained ${drained.toFixed(1)} s after the load; ` +
        `stored ${count} of ${accepted} accepted so far, the warm-up included (${sent} answered; each connection's ` +
        "last request, unanswered when the round ended, may be stored too)",
    );
    say(`round ${round}: CPU during the load and the drain: ${formatCpu(cpu.stop(), wall)}`);
    if (count < accepted) throw new Error(`ClickHouse holds ${count} events, ${accepted} were accepted`);
  }
} finally {
  await clickhouse.close();
  await system.runtime.stop(60_000);
  await engines.stop();
}
const summary = `median /event / bare node:http: ${median(ratios).toFixed(2)} (rounds: ${ratios.map((r) => r.toFixed(2)).join(", ")})`;
say(summary);
const report = [
  `Ingest, whole system, ${new Date().toISOString()} (node ${process.version}, ${connections} connections, ${roundS} s rounds)`,
  "",
  ...lines,
].join("\n");
writeFileSync(join(dataDir, "ingest-system.md"), `${report}\n`);
console.log(report);
