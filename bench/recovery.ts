import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type ClickHouseClient, createClient } from "@clickhouse/client";
import { Admin } from "@platformatic/kafka";
import { type Config, loadConfig } from "../src/config.ts";
import { measureConsumerLag } from "../src/kafka/lag.ts";
import { provision } from "../src/provision.ts";
import { repoRoot } from "../stack/paths.ts";
import { type EngineProcess, freePort, spawnLogged } from "../stack/process.ts";
import { benchAppEnv, startBenchEngines } from "./engines.ts";
import { apiNodeArgs } from "./pm2-apps.ts";

/**
 * npm run bench:recovery: how soon counting catches up when workers are SIGKILLed. Engines of its own, one API
 * and two workers (pm2 instances 0 and 1). Baseline in the same run: BENCH_EVENTS (30,000) distinct events plus
 * 10% copies sent over BENCH_SEND_S (6 s), no kills. Crash run: the same load with BENCH_KILLS (6) SIGKILLs of
 * the workers in turn, the first 2 s into the send, then 2-4 s apart, each worker started again at once (as pm2
 * does). For each: the last 202 -> every distinct id in ClickHouse, then lost and double-counted once the group
 * has committed everything; per kill, how long until the killed worker's partitions (its slot's last assignment,
 * from its log) that had lag at the kill were committed again. BENCH_LOG_LEVEL (info) for the workers' logs.
 */
const distinctEvents = Number(process.env.BENCH_EVENTS ?? 30_000);
const sendSeconds = Number(process.env.BENCH_SEND_S ?? 6);
const kills = Number(process.env.BENCH_KILLS ?? 6);
const WORKERS = 2;
const COPY_SHARE = 0.1;
const SEND_BATCH = 250;
const SENDERS = 4;
const POLL_MS = 100;
const dataDir = join(repoRoot, ".data/bench-recovery");

interface Event {
  id: string;
  ts: number;
  userId: string;
  adId: string;
}

/** Distinct events with COPY_SHARE copies, each copy soon after its original (within ~1,000 events). */
function plan(prefix: string): Event[] {
  const events: Event[] = [];
  for (let i = 0; i < distinctEvents; i++) {
    events.push({ id: `${prefix}-${i}`, ts: 0, userId: `u${i % 5000}`, adId: `ad${i % 50}` });
    if (Math.random() < COPY_SHARE) {
      const copy = events[Math.max(0, events.length - 1 - Math.floor(Math.random() * 1000))];
      if (copy) events.push(copy);
    }
  }
  return events;
}

/** POST /events until the API takes the batch (202); a copy keeps its original's ts. */
async function post(url: string, batch: Event[]): Promise<number> {
  const now = Date.now();
  for (const event of batch) if (event.ts === 0) event.ts = now;
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(`${url}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(batch),
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
    await response?.arrayBuffer();
    if (response?.status === 202) return Date.now();
    if (response && response.status !== 503) throw new Error(`the API answered ${response.status}`);
    await sleep(Math.min(1000, 50 * 2 ** attempt));
  }
}

/** Sends the events evenly over sendSeconds; resolves with the time of the last 202. */
async function send(url: string, events: Event[]): Promise<number> {
  const started = Date.now();
  const batches = Math.ceil(events.length / SEND_BATCH);
  let next = 0;
  let lastAccepted = 0;
  const sender = async () => {
    for (let b = next++; b < batches; b = next++) {
      const due = started + (b / batches) * sendSeconds * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
      lastAccepted = Math.max(lastAccepted, await post(url, events.slice(b * SEND_BATCH, (b + 1) * SEND_BATCH)));
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  return lastAccepted;
}

async function stored(clickhouse: ClickHouseClient, prefix: string): Promise<{ rows: number; distinct: number }> {
  const result = await clickhouse.query({
    query: "SELECT count() AS rows, uniqExact(id) AS distinct FROM impressions WHERE startsWith(id, {prefix:String})",
    query_params: { prefix: `${prefix}-` },
    format: "JSONEachRow",
  });
  const [row] = await result.json<{ rows: string; distinct: string }>();
  return { rows: Number(row?.rows ?? 0), distinct: Number(row?.distinct ?? 0) };
}

/** Polls until every distinct id of the phase is in ClickHouse; resolves with that moment. */
async function fullCount(clickhouse: ClickHouseClient, prefix: string, timeoutMs: number): Promise<number> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(POLL_MS)) {
    if ((await stored(clickhouse, prefix)).distinct >= distinctEvents) return Date.now();
  }
  throw new Error(`not every event was counted within ${timeoutMs / 1000} s`);
}

/** Where every partition stands for the workers' group, as GET /metrics reports it (src/kafka/lag.ts). */
function offsetProbe(config: Config) {
  const admin = new Admin({ clientId: "bench-recovery-probe", bootstrapBrokers: config.KAFKA_BROKERS });
  return {
    read: async () => (await measureConsumerLag(admin, config.KAFKA_TOPIC, config.KAFKA_CONSUMER_GROUP)).partitions,
    close: () => admin.close(),
  };
}

type Probe = ReturnType<typeof offsetProbe>;

/** Until the group committed every partition to its end. */
async function drained(probe: Probe, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(POLL_MS)) {
    if ((await probe.read()).every((p) => p.lag === 0n)) return;
  }
  throw new Error(`the workers did not commit everything within ${timeoutMs / 1000} s`);
}

/** The partitions a worker slot was last given, from its log ("kafka: partitions assigned", info level). */
function lastAssignment(logFile: string): number[] {
  const lines = readFileSync(logFile, "utf8").split("\n").reverse();
  const line = lines.find((l) => l.includes('"msg":"kafka: partitions assigned"'));
  return line ? (JSON.parse(line) as { partitions: number[] }).partitions : [];
}

/** How long the restarted worker waited for its dead predecessor's insert ("worker identity leased"), if it says. */
function waitForPredecessor(logFile: string, killedPid: number | undefined): number | null {
  const line = readFileSync(logFile, "utf8")
    .split("\n")
    .find((l) => l.includes('"msg":"worker identity leased"') && l.includes(`"predecessorPid":${killedPid},`));
  return line ? (JSON.parse(line) as { waitMs: number }).waitMs : null;
}

/**
 * From a kill on: how long until every partition of the killed worker that had lag at the kill was committed
 * again (past its committed offset at the kill); undefined if none had lag.
 */
async function commitsResumedAfter(
  probe: Probe,
  killedAt: number,
  partitions: number[],
  timeoutMs: number,
): Promise<number | undefined> {
  const waiting = new Map(
    (await probe.read())
      .filter((p) => partitions.includes(p.partition) && p.lag > 0n)
      .map((p) => [p.partition, p.committedOffset ?? -1n]),
  );
  if (waiting.size === 0) return undefined;
  let last = 0;
  for (const deadline = killedAt + timeoutMs; waiting.size > 0 && Date.now() < deadline; await sleep(POLL_MS)) {
    for (const p of await probe.read()) {
      const before = waiting.get(p.partition);
      if (before !== undefined && (p.committedOffset ?? -1n) > before) {
        last = Date.now() - killedAt;
        waiting.delete(p.partition);
      }
    }
  }
  if (waiting.size > 0) {
    throw new Error(`partitions ${[...waiting.keys()]} were not committed within ${timeoutMs / 1000} s of a kill`);
  }
  return last;
}

interface Kill {
  worker: number;
  atSecondsAfterSendStart: number;
  /** The partitions it held (its slot's last assignment). */
  partitions: number[];
  /** Until those with lag at the kill were all committed again; null: none had lag. */
  commitsResumedAfterSeconds: number | null;
  /** How long the restarted worker waited for an insert its predecessor may have had in flight. */
  restartWaitedMs: number | null;
  pid: number | undefined;
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(1));

const engines = await startBenchEngines(dataDir);
const apiPort = await freePort();
const log = (name: string) => join(dataDir, "logs", `${name}.log`);
const env = benchAppEnv(engines, apiPort, {
  // The workers' logs (under .data/bench-recovery/logs) show when each restarted worker got its name and partitions.
  LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "info",
  KAFKA_PARTITIONS: "8",
});
const config = loadConfig(env);
await provision(config);

const api = spawnLogged(process.execPath, [...apiNodeArgs(), join(repoRoot, "src/api/main.ts")], {
  env: { ...env, LOG_LEVEL: "warn" },
  logFile: log("api"),
});
// Worker i is pm2's instance i, as under `npm start`.
const startWorker = (i: number) =>
  spawnLogged(process.execPath, [join(repoRoot, "src/worker/main.ts")], {
    env: { ...env, NODE_APP_INSTANCE: String(i) },
    logFile: log(`worker-${i}`),
  });
const workers: EngineProcess[] = Array.from({ length: WORKERS }, (_, i) => startWorker(i));
const url = `http://127.0.0.1:${apiPort}`;
for (let ok = false; !ok; await sleep(200))
  ok = await fetch(`${url}/healthz`).then(
    (r) => r.ok,
    () => false,
  );
const clickhouse = createClient({ url: engines.env.CLICKHOUSE_URL });
const probe = offsetProbe(config);
const run = randomBytes(3).toString("hex");
// Warm-up: both workers joined and counting before anything is timed.
await send(url, plan(`${run}-warm`).slice(0, 500));
await drained(probe, 60_000);

async function phase(name: string, killing: boolean) {
  const prefix = `${run}-${name}`;
  const events = plan(prefix);
  const sending = send(url, events);
  const sendStarted = Date.now();
  const killLog: Kill[] = [];
  const waits: Promise<void>[] = [];
  const chaos = (async () => {
    if (!killing) return;
    await sleep(2_000);
    for (let k = 0; k < kills; k++) {
      if (k > 0) await sleep(2_000 + Math.random() * 2_000);
      const i = k % WORKERS;
      const killedAt = Date.now();
      const pid = workers[i]?.child.pid;
      await workers[i]?.kill();
      workers[i] = startWorker(i);
      console.log(`[bench] ${new Date(killedAt).toISOString()} SIGKILL worker ${i}, started again`);
      const entry: Kill = {
        worker: i,
        atSecondsAfterSendStart: seconds(killedAt - sendStarted),
        partitions: lastAssignment(log(`worker-${i}`)),
        commitsResumedAfterSeconds: null,
        restartWaitedMs: null,
        pid,
      };
      killLog.push(entry);
      waits.push(
        commitsResumedAfter(probe, killedAt, entry.partitions, 120_000).then((ms) => {
          entry.commitsResumedAfterSeconds = ms === undefined ? null : seconds(ms);
        }),
      );
    }
  })();
  const lastAccepted = await sending;
  const counted = await fullCount(clickhouse, prefix, 180_000);
  await chaos;
  await Promise.all(waits);
  await drained(probe, 180_000);
  const { rows, distinct } = await stored(clickhouse, prefix);
  for (const kill of killLog) kill.restartWaitedMs = waitForPredecessor(log(`worker-${kill.worker}`), kill.pid);
  return {
    sent: events.length,
    distinct: distinctEvents,
    lastSendToFullCountSeconds: seconds(counted - lastAccepted),
    lost: distinctEvents - distinct,
    doubleCounted: rows - distinct,
    ...(killing ? { kills: killLog.map(({ pid: _, ...kill }) => kill) } : {}),
  };
}

console.log(
  `[bench] baseline: ${distinctEvents} distinct events + ${COPY_SHARE * 100}% copies over ${sendSeconds} s ...`,
);
const baseline = await phase("baseline", false);
console.log(`[bench] crash run: the same load, ${kills} worker SIGKILLs ...`);
const crash = await phase("crash", true);

await probe.close();
await clickhouse.close();
await Promise.all(workers.map((w) => w.stop(30_000)));
await api.stop(10_000);
await engines.stop();
const { kills: killed = [], ...crashTotals } = crash;
console.log(JSON.stringify({ baseline, crash: crashTotals }, null, 2));
for (const kill of killed) console.log(`[bench] kill: ${JSON.stringify(kill)}`);
