import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import autocannon from "autocannon";
import { startKafka } from "../stack/kafka.ts";
import { repoRoot } from "../stack/paths.ts";
import { freePort, spawnLogged, waitUntilReady } from "../stack/process.ts";
import { apiNodeArgs } from "./pm2-apps.ts";
import { sampleRss } from "./rss.ts";

/**
 * npm run bench:ingest: POST /event and POST /events (1,000 per batch) through a real Kafka broker, against
 * a bare node:http server parsing the same JSON (the ceiling), all in one run on this machine.
 * Uses KAFKA_BROKERS when given, else starts its own broker under .data/bench.
 * BENCH_DURATION_S (default 15) and BENCH_CONNECTIONS (default 100) tune the load.
 */
const durationS = Number(process.env.BENCH_DURATION_S ?? 15);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 100);
const benchDir = join(repoRoot, ".data/bench");
const runId = randomBytes(4).toString("hex");
const AD_IDS = Array.from({ length: 10 }, (_, i) => `ad-${i}`);
const USER_COUNT = 10_000;
const HOUR_MS = 3_600_000;
const BATCH_SIZE = 1000;

let sequence = 0;
/** A random impression: a never-repeating id, one of 10 ads, one of 10k users, ts within the last hour. */
function impressionJson(): string {
  const ts = Date.now() - Math.floor(Math.random() * HOUR_MS);
  const user = Math.floor(Math.random() * USER_COUNT);
  const ad = AD_IDS[Math.floor(Math.random() * AD_IDS.length)];
  return `{"id":"${runId}-${(sequence++).toString(36)}","ts":${ts},"userId":"user-${user}","adId":"${ad}"}`;
}

function batchJson(): string {
  const events = new Array<string>(BATCH_SIZE);
  for (let i = 0; i < BATCH_SIZE; i++) events[i] = impressionJson();
  return `[${events.join(",")}]`;
}

interface Scenario {
  name: string;
  /** Command line of the server under test. */
  server: string[];
  path: string;
  body: () => string;
  eventsPerRequest: number;
}

interface Row {
  name: string;
  eventsPerSecond: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  rssPeakMb: number;
  non2xx: number;
  errors: number;
}

async function run(scenario: Scenario, env: NodeJS.ProcessEnv): Promise<Row> {
  const port = await freePort();
  const logFile = join(benchDir, `${scenario.name.replace(/\W+/g, "-")}.log`);
  const server = spawnLogged(process.execPath, scenario.server, {
    cwd: repoRoot,
    env: { ...process.env, ...env, PORT: String(port) },
    logFile,
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    const answers = () => fetch(`${base}/healthz`).then(() => true);
    await waitUntilReady(scenario.name, server, answers, 60_000);
    const rss = sampleRss([server.child.pid as number]);
    const result = await autocannon({
      url: `${base}${scenario.path}`,
      connections,
      duration: durationS,
      requests: [
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          setupRequest: (request) => ({ ...request, body: scenario.body() }),
        },
      ],
    });
    const [rssPeakMb = 0] = rss.stop();
    const ok = result["2xx"];
    return {
      name: scenario.name,
      eventsPerSecond: (ok * scenario.eventsPerRequest) / durationS,
      requestsPerSecond: ok / durationS,
      p50: result.latency.p50,
      p99: result.latency.p99,
      rssPeakMb,
      non2xx: result.non2xx,
      errors: result.errors + result.timeouts,
    };
  } finally {
    await server.stop();
  }
}

function table(rows: Row[], ceiling: number): string {
  const lines = [
    "| scenario | events/s | requests/s | p50 ms | p99 ms | peak RSS MB | vs bare node:http | non-2xx | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${Math.round(r.eventsPerSecond).toLocaleString("en-US")} | ${Math.round(r.requestsPerSecond).toLocaleString("en-US")} | ${r.p50} | ${r.p99} | ${r.rssPeakMb.toFixed(0)} | ${(r.eventsPerSecond / ceiling).toFixed(2)} | ${r.non2xx} | ${r.errors} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  mkdirSync(benchDir, { recursive: true });
  let brokers = process.env.KAFKA_BROKERS;
  let stopKafka = async () => {};
  if (!brokers) {
    const dataDir = join(benchDir, "kafka");
    rmSync(dataDir, { recursive: true, force: true });
    console.error("[bench] starting Kafka under .data/bench ...");
    const kafka = await startKafka({
      port: await freePort(),
      controllerPort: await freePort(),
      dataDir,
      logFile: join(benchDir, "kafka.log"),
    });
    brokers = kafka.brokers.join(",");
    stopKafka = kafka.stop;
  }
  const apiEnv = {
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC: `impressions-bench-${runId}`,
    KAFKA_DLQ_TOPIC: `impressions-bench-${runId}.dlq`,
    API_ROLE: "ingest",
    LOG_LEVEL: "warn",
    BATCH_MAX_EVENTS: String(BATCH_SIZE),
  };
  // The API as pm2 runs it, with the ecosystem file's node arguments.
  const api = [...apiNodeArgs(), "src/api/main.ts"];
  const scenarios: Scenario[] = [
    {
      name: "bare node:http, JSON.parse, 204 (ceiling)",
      server: ["bench/baseline-server.ts"],
      path: "/event",
      body: impressionJson,
      eventsPerRequest: 1,
    },
    { name: "POST /event -> Kafka ack", server: api, path: "/event", body: impressionJson, eventsPerRequest: 1 },
    {
      name: `POST /events (${BATCH_SIZE}/batch) -> Kafka ack`,
      server: api,
      path: "/events",
      body: batchJson,
      eventsPerRequest: BATCH_SIZE,
    },
  ];
  const rows: Row[] = [];
  try {
    for (const scenario of scenarios) {
      console.error(`[bench] ${scenario.name}: ${connections} connections, ${durationS}s ...`);
      rows.push(await run(scenario, apiEnv));
    }
  } finally {
    await stopKafka();
  }
  const ceiling = rows[0]?.eventsPerSecond ?? 1;
  const report = [
    `Ingest benchmark ${new Date().toISOString()} (node ${process.version}, ${connections} connections, ${durationS}s each)`,
    "",
    table(rows, ceiling),
  ].join("\n");
  writeFileSync(join(benchDir, "ingest.md"), `${report}\n`);
  console.log(report);
}

await main();
