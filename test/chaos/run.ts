import { rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@clickhouse/client";
import { Consumer } from "@platformatic/kafka";
import { type Config, loadConfig } from "../../src/config.ts";
import { provision } from "../../src/provision.ts";
import { startClickHouse } from "../../stack/clickhouse.ts";
import { startKafka } from "../../stack/kafka.ts";
import { repoRoot } from "../../stack/paths.ts";
import { type EngineProcess, freePort, spawnLogged } from "../../stack/process.ts";
import { startValkey } from "../../stack/valkey.ts";

export interface ChaosOptions {
  events: number;
  /** Share of sends that repeat an id already sent. */
  duplicateRate: number;
  /** How long the sending lasts; the kills and restarts happen inside it. */
  sendSeconds: number;
  workers: number;
  workerKills: number;
  dataDir: string;
  log?: (line: string) => void;
}

export interface ChaosResult {
  sent: number;
  accepted: number;
  distinctAccepted: number;
  storedRows: number;
  storedDistinct: number;
  rollupTotal: number;
  lost: number;
  doubleCounted: number;
  notAcceptedButStored: number;
  workerKills: number;
  engineRestarts: string[];
  retriedSends: number;
  seconds: number;
}

interface Event {
  id: string;
  ts: number;
  userId: string;
  adId: string;
}

const SEND_BATCH = 250;
const SENDERS = 4;

/**
 * Sends events with duplicates through the real API to real worker processes while killing workers with
 * SIGKILL and restarting Kafka, ClickHouse and Valkey; then checks that every accepted id is stored exactly
 * once and that the rollup agrees. Starts engines of its own (own ports, own data dir) since it restarts them.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? ((line: string) => console.log(`[chaos] ${line}`));
  const began = Date.now();
  rmSync(options.dataDir, { recursive: true, force: true });
  const logs = (name: string) => join(options.dataDir, "logs", `${name}.log`);
  const [kafkaPort, controllerPort, valkeyPort, clickhousePort, apiPort] = await Promise.all(
    Array.from({ length: 5 }, () => freePort()),
  );
  const kafkaOptions = {
    port: kafkaPort as number,
    controllerPort: controllerPort as number,
    dataDir: join(options.dataDir, "kafka"),
    logFile: logs("kafka"),
  };
  const valkeyOptions = {
    port: valkeyPort as number,
    dataDir: join(options.dataDir, "valkey"),
    logFile: logs("valkey"),
  };
  const clickhouseOptions = {
    port: clickhousePort as number,
    dataDir: join(options.dataDir, "clickhouse"),
    logFile: logs("clickhouse"),
  };
  let [kafka, valkey, clickhouse] = await Promise.all([
    startKafka(kafkaOptions),
    startValkey(valkeyOptions),
    startClickHouse(clickhouseOptions),
  ]);
  const env = {
    ...process.env,
    KAFKA_BROKERS: kafka.brokers.join(","),
    VALKEY_URL: valkey.url,
    CLICKHOUSE_URL: clickhouse.url,
    PORT: String(apiPort),
    LOG_LEVEL: "warn",
    // Durability and throughput of the pipeline, not keys: no keys file, whatever the developer has.
    AUTH: "off",
    // Free metrics ports: this runs beside `npm start`, which has the fixed ones.
    API_METRICS_PORT: "0",
    WORKER_METRICS_PORT: "0",
    KAFKA_PARTITIONS: "8",
  };
  const config = loadConfig(env);
  await provision(config);
  log(`engines up; kafka ${env.KAFKA_BROKERS}, valkey ${env.VALKEY_URL}, clickhouse ${env.CLICKHOUSE_URL}`);

  const api = spawnLogged(process.execPath, [join(repoRoot, "src/api/main.ts")], { env, logFile: logs("api") });
  const workers: EngineProcess[] = [];
  const spawnWorker = (i: number) =>
    spawnLogged(process.execPath, [join(repoRoot, "src/worker/main.ts")], { env, logFile: logs(`worker-${i}`) });
  for (let i = 0; i < options.workers; i++) workers.push(spawnWorker(i));
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  await waitFor(() => fetch(`${apiUrl}/healthz`).then((r) => r.ok), 60_000, "the API did not become healthy");

  const events = plan(options.events, options.duplicateRate);
  const accepted = new Set<string>();
  let acceptedCount = 0;
  let retriedSends = 0;

  const chaos = (async () => {
    const steps = options.workerKills + 3;
    const every = (options.sendSeconds * 1000) / (steps + 1);
    const engineAt = new Map([
      [Math.floor(steps * 0.25), "kafka"],
      [Math.floor(steps * 0.5), "clickhouse"],
      [Math.floor(steps * 0.75), "valkey"],
    ]);
    const restarted: string[] = [];
    let kills = 0;
    for (let step = 0; step < steps; step++) {
      // Random moments, mostly while events are still being sent (restarts themselves take seconds).
      await sleep(every * (0.3 + 0.7 * Math.random()));
      const engine = engineAt.get(step);
      if (engine === "kafka") {
        log("restarting Kafka");
        await kafka.stop();
        kafka = await startKafka(kafkaOptions);
      } else if (engine === "clickhouse") {
        log("restarting ClickHouse");
        await clickhouse.stop();
        clickhouse = await startClickHouse(clickhouseOptions);
      } else if (engine === "valkey") {
        log("killing Valkey (SIGKILL) and restarting it from its AOF");
        await valkey.kill();
        valkey = await startValkey(valkeyOptions);
      } else {
        const i = Math.floor(Math.random() * workers.length);
        await workers[i]?.kill();
        kills++;
        log(`SIGKILL worker ${i} (${kills})`);
        await sleep(200 + Math.random() * 1500);
        workers[i] = spawnWorker(i);
      }
      if (engine) restarted.push(engine);
    }
    return { kills, restarted };
  })();

  const started = Date.now();
  const batches = Math.ceil(events.length / SEND_BATCH);
  let next = 0;
  const sender = async () => {
    for (let b = next++; b < batches; b = next++) {
      const due = started + (b / batches) * options.sendSeconds * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
      const batch = events.slice(b * SEND_BATCH, (b + 1) * SEND_BATCH);
      for (let attempt = 0; ; attempt++) {
        const outcome = await send(apiUrl, batch);
        if (outcome.ok) {
          for (const event of outcome.acceptedEvents) accepted.add(event.id);
          acceptedCount += outcome.acceptedEvents.length;
          break;
        }
        retriedSends++;
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  log(`sent ${events.length} events in ${((Date.now() - started) / 1000).toFixed(0)}s (${retriedSends} sends retried)`);
  const { kills, restarted } = await chaos;

  const client = createClient({ url: clickhouse.url, request_timeout: 60_000 });
  log("waiting for the workers to commit everything ...");
  await waitForDrained(config, 240_000);
  await Promise.all(workers.map((w) => w.stop(30_000)));
  await api.stop(10_000);

  const totals = await client.query({
    query: `SELECT count() AS rows, uniqExact(id) AS distinct, (SELECT sum(impressions) FROM impressions_per_minute) AS rollup
      FROM impressions`,
    format: "JSONEachRow",
  });
  const [row] = await totals.json<Record<string, string>>();
  const storedIds = new Set(
    (
      await (await client.query({ query: "SELECT id FROM impressions", format: "JSONCompactEachRow" })).json<[string]>()
    ).map(([id]) => id),
  );
  await client.close();
  await Promise.all([kafka.stop(), valkey.stop(), clickhouse.stop()]);

  const storedRows = Number(row?.rows);
  const storedDistinct = Number(row?.distinct);
  const result: ChaosResult = {
    sent: events.length,
    accepted: acceptedCount,
    distinctAccepted: accepted.size,
    storedRows,
    storedDistinct,
    rollupTotal: Number(row?.rollup),
    lost: [...accepted].filter((id) => !storedIds.has(id)).length,
    doubleCounted: storedRows - storedDistinct,
    notAcceptedButStored: [...storedIds].filter((id) => !accepted.has(id)).length,
    workerKills: kills,
    engineRestarts: restarted,
    retriedSends,
    seconds: Math.round((Date.now() - began) / 1000),
  };
  log(
    `lost ${result.lost}, double-counted ${result.doubleCounted}; stored ${storedRows} rows for ${accepted.size} distinct accepted ids; rollup ${result.rollupTotal}`,
  );
  return result;
}

/** Originals with ~duplicateRate copies: most a few seconds after theirs, some minutes later (at the end). */
function plan(total: number, duplicateRate: number): Event[] {
  const run = Date.now().toString(36);
  const events: Event[] = [];
  const late: Event[] = [];
  const originals = Math.round(total * (1 - duplicateRate));
  const copies = total - originals;
  const lateCopies = Math.floor(copies * 0.3);
  let copiesLeft = copies - lateCopies;
  for (let i = 0; i < originals; i++) {
    events.push({ id: `c-${run}-${i}`, ts: 0, userId: `u${i % 5000}`, adId: `ad${i % 50}` });
    if (copiesLeft > 0 && Math.random() < (copies - lateCopies) / originals) {
      // A copy within the last ~1,000 events: about a second or two earlier at the send rate.
      const recent = events[Math.max(0, events.length - 1 - Math.floor(Math.random() * 1000))];
      if (recent) events.push(recent);
      copiesLeft--;
    }
  }
  for (let i = 0; i < lateCopies + copiesLeft; i++) {
    const early = events[Math.floor(Math.random() * events.length * 0.2)];
    if (early) late.push(early);
  }
  return [...events, ...late];
}

type SendOutcome = { ok: true; acceptedEvents: Event[] } | { ok: false };

/** One POST /events; 503 and network errors are worth a retry, anything else stops the run. */
async function send(apiUrl: string, batch: Event[]): Promise<SendOutcome> {
  // The first send of an event fixes its ts: a copy is the same event sent again.
  const now = Date.now();
  for (const event of batch) if (event.ts === 0) event.ts = now;
  try {
    const response = await fetch(`${apiUrl}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(batch),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json()) as { rejected?: { index: number }[] };
    if (response.status === 202) {
      const rejected = new Set((body.rejected ?? []).map((r) => r.index));
      if (rejected.size > 0) throw new Error(`the API rejected valid events: ${JSON.stringify(body.rejected)}`);
      return { ok: true, acceptedEvents: batch };
    }
    if (response.status === 503) return { ok: false };
    throw new Error(`the API answered ${response.status}: ${JSON.stringify(body)}`);
  } catch (error) {
    if (error instanceof TypeError || (error as Error).name === "TimeoutError") return { ok: false };
    throw error;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(250)) {
    if (await check().catch(() => false)) return;
  }
  throw new Error(message);
}

/** Until the workers' group has committed every partition up to its end. */
async function waitForDrained(config: Config, timeoutMs: number): Promise<void> {
  const probe = new Consumer({
    clientId: "chaos-probe",
    groupId: config.KAFKA_CONSUMER_GROUP,
    bootstrapBrokers: config.KAFKA_BROKERS,
  });
  const topic = config.KAFKA_TOPIC;
  const partitions = Array.from({ length: config.KAFKA_PARTITIONS }, (_, p) => p);
  try {
    await waitFor(
      async () => {
        const [ends, commits] = await Promise.all([
          probe.listOffsets({ topics: [topic] }),
          probe.listCommittedOffsets({ topics: [{ topic, partitions }] }),
        ]);
        return partitions.every((p) => {
          const end = ends.get(topic)?.[p] ?? 0n;
          return end === 0n || (commits.get(topic)?.[p] ?? -1n) >= end;
        });
      },
      timeoutMs,
      `the workers did not commit everything within ${timeoutMs / 1000}s`,
    );
  } finally {
    await probe.close();
  }
}

if (import.meta.main) {
  const events = Number(process.env.CHAOS_EVENTS ?? 200_000);
  const result = await runChaos({
    events,
    duplicateRate: 0.1,
    sendSeconds: Number(process.env.CHAOS_SEND_SECONDS ?? 120),
    workers: 2,
    workerKills: 12,
    dataDir: join(repoRoot, ".data/chaos"),
  });
  console.log(JSON.stringify(result, null, 2));
  const exact = result.lost === 0 && result.doubleCounted === 0 && result.storedDistinct === result.distinctAccepted;
  process.exit(exact && result.rollupTotal === result.storedRows ? 0 : 1);
}
