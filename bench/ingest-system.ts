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
import { runInTree } from "./other-tree.ts";
import { median } from "./percentile.ts";
import { type Pm2System, startPm2Apps } from "./pm2-apps.ts";
import { formatCpu, measureCpu } from "./processes.ts";
import { busyShare, machineTicks, sampleRss, settle } from "./rss.ts";

/**
 * npm run bench:ingest-system: POST /event against the whole system as `npm start` runs it (its engines, then
 * pm2-runtime on ecosystem.config.cjs: API_INSTANCES API processes and WORKER_INSTANCES workers, one per core by
 * default, the workers consuming meanwhile), alternated with the bare node:http ceiling (bench/baseline-server.ts,
 * one process, started beside the idle system) for BENCH_ROUNDS rounds of BENCH_ROUND_S seconds, 100 connections
 * (BENCH_CONNECTIONS), a fresh random impression per request. After each /event round it waits until ClickHouse
 * holds every accepted event, so the next round starts with no backlog and the count is checked. Before the first
 * round, BENCH_WARMUP_S (30) of unmeasured /event load warm up the engines' JIT and the new topic. Each round
 * prints the share of the machine's cores busy during the load and every process's CPU, the load generator's too.
 * Before each /event round it waits for the machine to settle (bench/rss.ts: settle), so that the merges the
 * round before left running do not fall on it.
 *
 * BENCH_COMPARE_TREE=<paths of other checkouts, comma-separated, their npm packages installed> runs each one's
 * whole app too, beside this one's, on the same engines (its own topic, consumer group and database, provisioned
 * by its own code), and adds its /event to every round, the order turning each round: a change and the code before
 * it measured in the same minutes, as their ratio per round.
 */
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const roundS = Number(process.env.BENCH_ROUND_S ?? 15);
const warmupS = Number(process.env.BENCH_WARMUP_S ?? 30);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 100);
const compareTrees = (process.env.BENCH_COMPARE_TREE ?? "").split(",").filter((tree) => tree !== "");
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

/** One whole app on the shared engines: this checkout's, or a compared one's with its own topic and database. */
interface System {
  label: string;
  url: string;
  pm2: Pm2System;
  stored(): Promise<number>;
  /** Events it answered 2xx (warm-up included), and every answer. */
  accepted: number;
  sent: number;
  ratios: number[];
}

mkdirSync(dataDir, { recursive: true });
const engines = await startBenchEngines(dataDir);
const clickhouse = createClient({ url: engines.env.CLICKHOUSE_URL });

/** Provisions with `root`'s own code (its topic, its schema), then starts its apps. */
async function startSystem(root: string, index: number): Promise<System> {
  const apiPort = await freePort();
  const database = index === 0 ? "default" : `compared_${index}`;
  const env = benchAppEnv(engines, apiPort, {
    // The query API (ecosystem.config.cjs's `query` app) on a port of its own too: it idles through the run.
    QUERY_PORT: String(await freePort()),
    ...(index === 0
      ? {}
      : {
          KAFKA_TOPIC: `impressions_compared_${index}`,
          KAFKA_CONSUMER_GROUP: `impressions-worker-compared-${index}`,
          CLICKHOUSE_DATABASE: database,
        }),
  });
  if (root === repoRoot) await provision(loadConfig(env));
  else {
    await runInTree(
      root,
      'const { provision } = await import("./src/provision.ts"); const { loadConfig } = await import("./src/config.ts"); await provision(loadConfig(process.env));',
      env,
      join(dataDir, "logs", `provision-${index}.log`),
    );
  }
  const url = `http://127.0.0.1:${apiPort}`;
  const pm2 = await startPm2Apps(env, join(dataDir, `system-${index}`), `${url}/healthz`, root);
  const stored = async () => {
    const result = await clickhouse.query({
      query: `SELECT count() AS n FROM ${database}.impressions`,
      format: "JSONEachRow",
    });
    const [row] = await result.json<{ n: string }>();
    return Number(row?.n ?? 0);
  };
  const label = root === repoRoot ? "this tree" : root;
  return { label, url, pm2, stored, accepted: 0, sent: 0, ratios: [] };
}

const systems: System[] = [];
const lines: string[] = [];
const say = (line: string) => {
  console.error(line);
  lines.push(line);
};
/** Waits until ClickHouse holds every event `system` accepted (or DRAIN_TIMEOUT_MS passed); the count it reached. */
async function drain(system: System): Promise<number> {
  const started = performance.now();
  let count = await system.stored();
  while (count < system.accepted && performance.now() - started < DRAIN_TIMEOUT_MS) {
    await sleep(100);
    count = await system.stored();
  }
  return count;
}
/** One measured round of POST /event against `system`, its backlog drained and its count checked. */
async function eventRound(system: System, round: number, ceiling: number) {
  const { pm2 } = system;
  const cpu = measureCpu({
    api: pm2.apiPids,
    "query api": pm2.queryPids,
    "pm2-runtime": [pm2.runtime.child.pid as number],
    workers: pm2.workerPids,
    kafka: [engines.pids.kafka],
    valkey: [engines.pids.valkey],
    clickhouse: [engines.pids.clickhouse],
    // autocannon runs in this process.
    "load generator": [process.pid],
  });
  // What the load before left running (ClickHouse's merges above all) would otherwise fall on this one.
  const settled = await settle();
  const rss = sampleRss(pm2.apiPids);
  const started = performance.now();
  const machine = machineTicks();
  const event = await load(`${system.url}/event`);
  const machineBusy = busyShare(machine, machineTicks());
  const rssPeaks = rss.stop();
  system.accepted += event.ok;
  system.sent += event.ok + event.non2xx + event.errors;
  const drainStarted = performance.now();
  const count = await drain(system);
  const wall = (performance.now() - started) / 1000;
  const drained = (performance.now() - drainStarted) / 1000;
  const ratio = event.perSecond / ceiling;
  system.ratios.push(ratio);
  const who = systems.length > 1 ? ` (${system.label})` : "";
  say(
    `round ${round}: POST /event${who} ${Math.round(event.perSecond)} events/s = ${ratio.toFixed(2)} x bare (p50 ${event.p50} ms, ` +
      `p99 ${event.p99} ms, non-2xx ${event.non2xx}, errors ${event.errors}, machine ${(machineBusy * 100).toFixed(0)}% busy); API peak RSS ` +
      `${rssPeaks.map((mb) => Math.round(mb)).join(" / ")} MB; backlog drained ${drained.toFixed(1)} s after the load; ` +
      `machine settled ${settled.toFixed(1)} s before; stored ${count} of ${system.accepted} accepted so far, the warm-up included (${system.sent} answered; each connection's ` +
      "last request, unanswered when the round ended, may be stored too)",
  );
  say(`round ${round}: CPU during the load and the drain${who}: ${formatCpu(cpu.stop(), wall)}`);
  if (count < system.accepted) throw new Error(`ClickHouse holds ${count} events, ${system.accepted} were accepted`);
}

try {
  for (const [index, root] of [repoRoot, ...compareTrees].entries()) systems.push(await startSystem(root, index));
  if (warmupS > 0) {
    for (const system of systems) {
      console.error(
        `[bench] warm-up${systems.length > 1 ? ` (${system.label})` : ""}: POST /event, ${warmupS}s, not measured ...`,
      );
      const warmup = await load(`${system.url}/event`, warmupS);
      system.accepted += warmup.ok;
      system.sent += warmup.ok + warmup.non2xx + warmup.errors;
      await drain(system);
    }
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
    // The order turns each round: whichever goes first does not always meet the same state of the machine.
    const order = round % 2 === 1 ? systems : [...systems].reverse();
    for (const system of order) await eventRound(system, round, ceiling.perSecond);
  }
} finally {
  await clickhouse.close();
  await Promise.allSettled(systems.map((system) => system.pm2.runtime.stop(60_000)));
  await engines.stop();
}
const [self, ...compared] = systems as [System, ...System[]];
say(
  `median /event / bare node:http: ${median(self.ratios).toFixed(2)} (rounds: ${self.ratios.map((r) => r.toFixed(2)).join(", ")})`,
);
for (const other of compared) {
  const perRound = self.ratios.map((r, i) => r / (other.ratios[i] as number));
  say(
    `${other.label}: median /event / bare node:http ${median(other.ratios).toFixed(2)}; this tree / it, per round: ` +
      `${perRound.map((r) => r.toFixed(3)).join(", ")}; median ${median(perRound).toFixed(3)}`,
  );
}
const report = [
  `Ingest, whole system, ${new Date().toISOString()} (node ${process.version}, ${connections} connections, ${roundS} s rounds)`,
  "",
  ...lines,
].join("\n");
writeFileSync(join(dataDir, "ingest-system.md"), `${report}\n`);
console.log(report);
