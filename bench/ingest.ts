import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import autocannon from "autocannon";
import { hashSecret, newSecret, writeKeysFile } from "../src/auth/keys-file.ts";
import { startKafka } from "../stack/kafka.ts";
import { repoRoot } from "../stack/paths.ts";
import { freePort, spawnLogged, waitUntilReady } from "../stack/process.ts";
import { median } from "./percentile.ts";
import { apiNodeArgs } from "./pm2-apps.ts";
import { pidListeningOn } from "./processes.ts";
import { busyShare, cpuSeconds, machineTicks, rssMb, sampleRss } from "./rss.ts";

/**
 * npm run bench:ingest: POST /event and POST /events (1,000 per batch) through a real Kafka broker, against
 * a bare node:http server parsing the same JSON (the ceiling), all in one run on this machine; and, for /events'
 * memory, the API's process reading the same bodies at the same rate and writing them to Kafka unparsed
 * (bench/batch-floor-server.ts: what any way of parsing a batch costs before its first object). Then the cost
 * of the front door: /event open against /event with an ingest key bound to an origin (key check, origin check
 * and CORS headers on every request), the pixel open against the pixel with that key, and /event with metrics
 * (the default) against METRICS=off, alternated for BENCH_ROUNDS rounds so that the machine's drift hits all of
 * them alike. Last, /event sent as the tag sends it from a page (no ts; Origin, Sec-Fetch-*, a desktop user agent:
 * every rule of the invalid-traffic classification runs, against an IP ranges file of 5,000 ranges) against the
 * same with IVT_CLASSIFICATION=off: two API processes started once and warmed up, then BENCH_PAIRS (12) pairs of
 * BENCH_PAIR_S (5) second loads, back to back, the order turning each pair; the verdict is the median of the
 * pairs' ratios.
 * Uses KAFKA_BROKERS when given, else starts its own broker under .data/bench (and then also reports its CPU per
 * event; every row also has the share of the machine's cores busy, which shows whether the machine or the server is
 * the bound). Before the first scenario, BENCH_WARMUP_S (default 30) of unmeasured /event load warm up the broker's JIT
 * and the new topic, which the first scenario after the ceiling would otherwise pay for.
 * BENCH_DURATION_S (default 15), BENCH_CONNECTIONS (default 100), BENCH_ROUNDS (default 3) and
 * BENCH_ROUND_S (default 10) tune the load. BENCH_COMPARE_TREE=<paths of other checkouts, comma-separated, their
 * npm packages installed> adds each tree's API to the alternated rounds ("/event open" as it was there), to
 * compare a change with the code before it in the same run.
 */
const durationS = Number(process.env.BENCH_DURATION_S ?? 15);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 100);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const roundS = Number(process.env.BENCH_ROUND_S ?? 10);
const warmupS = Number(process.env.BENCH_WARMUP_S ?? 30);
const pairs = Number(process.env.BENCH_PAIRS ?? 12);
const pairS = Number(process.env.BENCH_PAIR_S ?? 5);
const pairWarmupS = 10;
const PUBLISHER = "https://publisher.example";
const INGEST_KEY = newSecret("ingest");
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

/** What the tag sends from a page: no ts (the API stamps its receive time, as for every event of the tag). */
function pageImpressionJson(): string {
  const user = Math.floor(Math.random() * USER_COUNT);
  const ad = AD_IDS[Math.floor(Math.random() * AD_IDS.length)];
  return `{"id":"${runId}-${(sequence++).toString(36)}","userId":"user-${user}","adId":"${ad}"}`;
}

/** The pixel's path for a random impression (no ts: the server takes its receive time), with the key. */
function pixelPath(): string {
  const { id, userId, adId } = JSON.parse(impressionJson());
  return `/pixel.gif?${new URLSearchParams({ id, adId, userId, key: INGEST_KEY })}`;
}

/** The same without a key, for the API running open. */
function openPixelPath(): string {
  const { id, userId, adId } = JSON.parse(impressionJson());
  return `/pixel.gif?${new URLSearchParams({ id, adId, userId })}`;
}

/** What a page's beacon carries besides its body: the classification reads the viewer from these. */
const PAGE_HEADERS = {
  origin: PUBLISHER,
  "sec-fetch-site": "cross-site",
  "sec-fetch-mode": "no-cors",
  "user-agent":
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
};

/** An operator's IP ranges file of `count` IPv4 ranges (/16 to /24, away from 127/8), as data-center lists are. */
function ipRangesFile(path: string, count: number): string {
  let seed = 42;
  const next = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  const lines = Array.from({ length: count }, () => {
    const bits = 16 + next(9);
    return `${1 + next(126)}.${next(256)}.${next(256)}.0/${bits}`;
  });
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
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
  /** A POST's body; a GET has none. */
  body?: () => string;
  /** A GET's path per request. */
  pathOf?: () => string;
  headers?: Record<string, string>;
  /** The server's environment on top of the common one. */
  env?: Record<string, string>;
  eventsPerRequest: number;
  seconds?: number;
  /** Offer the requests/s the scenario before it reached instead of as many as the server takes. */
  atPreviousRate?: boolean;
  /** The checkout the server runs from; this one by default. */
  cwd?: string;
}

interface Row {
  name: string;
  eventsPerSecond: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  /** Resident memory once the server is ready, before the load. */
  rssStartMb: number;
  rssPeakMb: number;
  /** The server's CPU time per 2xx request, microseconds: what the request costs, whatever bounds throughput. */
  cpuMicrosPerRequest: number;
  /** The Kafka broker's CPU time per accepted event, microseconds; undefined for a broker the bench did not start. */
  kafkaMicrosPerEvent: number | undefined;
  /** Share of the machine's cores busy during the load (server, broker and load generator together). */
  machineBusy: number;
  non2xx: number;
  errors: number;
}

/** The broker's pid when the bench started it: its CPU is part of what an acknowledged event costs. */
let kafkaPid: number | undefined;

/** A server under test, started and answering. */
interface RunningServer {
  base: string;
  pid: number;
  stop(): Promise<void>;
}

async function startServer(scenario: Scenario, env: NodeJS.ProcessEnv): Promise<RunningServer> {
  const port = await freePort();
  const logFile = join(benchDir, `${scenario.name.replace(/\W+/g, "-")}.log`);
  const server = spawnLogged(process.execPath, scenario.server, {
    cwd: scenario.cwd ?? repoRoot,
    env: { ...process.env, ...env, ...scenario.env, PORT: String(port) },
    logFile,
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    const answers = () => fetch(`${base}/healthz`).then(() => true);
    await waitUntilReady(scenario.name, server, answers, 60_000);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { base, pid: server.child.pid as number, stop: () => server.stop() };
}

/** The scenario's load against a running server for `seconds`, and what it cost. */
async function load(server: RunningServer, scenario: Scenario, seconds: number, overallRate?: number): Promise<Row> {
  const { base, pid } = server;
  const rssStartMb = rssMb(pid);
  const rss = sampleRss([pid]);
  const cpuBefore = cpuSeconds(pid);
  const kafkaBefore = kafkaPid === undefined ? 0 : cpuSeconds(kafkaPid);
  const machineBefore = machineTicks();
  const { body, pathOf } = scenario;
  const result = await autocannon({
    url: `${base}${scenario.path}`,
    connections,
    duration: seconds,
    ...(overallRate ? { overallRate } : {}),
    requests: [
      body
        ? {
            method: "POST",
            headers: { "content-type": "application/json", ...scenario.headers },
            setupRequest: (request) => ({ ...request, body: body() }),
          }
        : {
            method: "GET",
            headers: { ...scenario.headers },
            setupRequest: (request) => ({ ...request, path: pathOf ? pathOf() : scenario.path }),
          },
    ],
  });
  const [rssPeakMb = 0] = rss.stop();
  const machineBusy = busyShare(machineBefore, machineTicks());
  const ok = result["2xx"];
  const cpuMicrosPerRequest = ((cpuSeconds(pid) - cpuBefore) * 1e6) / Math.max(1, ok);
  const events = Math.max(1, ok * scenario.eventsPerRequest);
  const kafkaMicrosPerEvent =
    kafkaPid === undefined ? undefined : ((cpuSeconds(kafkaPid) - kafkaBefore) * 1e6) / events;
  return {
    name: scenario.name,
    eventsPerSecond: (ok * scenario.eventsPerRequest) / seconds,
    requestsPerSecond: ok / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    rssStartMb,
    rssPeakMb,
    cpuMicrosPerRequest,
    kafkaMicrosPerEvent,
    machineBusy,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

/** A fresh server for the scenario, its load, then the server stopped. */
async function run(scenario: Scenario, env: NodeJS.ProcessEnv, overallRate?: number): Promise<Row> {
  const server = await startServer(scenario, env);
  try {
    return await load(server, scenario, scenario.seconds ?? durationS, overallRate);
  } finally {
    await server.stop();
  }
}

/** Two variants' rows of one pair, measured back to back. */
interface Pair {
  a: Row;
  b: Row;
}

/**
 * Two variants side by side, each in its own server started once and warmed up, then `pairs` loads of `seconds`
 * each, back to back, the order turning each pair: no process start or JIT warm-up inside a measurement, and each
 * pair's two loads minutes closer than whole rounds are.
 */
async function warmPairs(a: Scenario, b: Scenario, env: NodeJS.ProcessEnv): Promise<Pair[]> {
  const servers = [await startServer(a, env), await startServer(b, env)] as const;
  try {
    for (const [i, server] of servers.entries()) await load(server, i === 0 ? a : b, pairWarmupS);
    const results: Pair[] = [];
    for (let pair = 1; pair <= pairs; pair++) {
      console.error(`[bench] pair ${pair}/${pairs}: ${a.name} and ${b.name}, ${pairS}s each ...`);
      if (pair % 2 === 1) {
        const rowA = await load(servers[0], a, pairS);
        results.push({ a: rowA, b: await load(servers[1], b, pairS) });
      } else {
        const rowB = await load(servers[1], b, pairS);
        results.push({ a: await load(servers[0], a, pairS), b: rowB });
      }
    }
    return results;
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

function table(rows: Row[], ceiling: number): string {
  const lines = [
    "| scenario | events/s | requests/s | p50 ms | p99 ms | RSS at start MB | peak RSS MB | CPU µs/request | Kafka CPU µs/event | machine busy | vs bare node:http | non-2xx | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.name} | ${Math.round(r.eventsPerSecond).toLocaleString("en-US")} | ${Math.round(r.requestsPerSecond).toLocaleString("en-US")} | ${r.p50} | ${r.p99} | ${r.rssStartMb.toFixed(0)} | ${r.rssPeakMb.toFixed(0)} | ${Math.round(r.cpuMicrosPerRequest)} | ${r.kafkaMicrosPerEvent?.toFixed(1) ?? ""} | ${(r.machineBusy * 100).toFixed(0)}% | ${(r.eventsPerSecond / ceiling).toFixed(2)} | ${r.non2xx} | ${r.errors} |`,
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
    const kafkaPort = await freePort();
    const kafka = await startKafka({
      port: kafkaPort,
      controllerPort: await freePort(),
      dataDir,
      logFile: join(benchDir, "kafka.log"),
    });
    brokers = kafka.brokers.join(",");
    stopKafka = kafka.stop;
    kafkaPid = pidListeningOn(kafkaPort);
  }
  // One ingest key, bound to the publisher's origin: each keyed request pays the key, origin and CORS checks.
  const keysFile = join(benchDir, "keys.json");
  writeKeysFile(keysFile, {
    version: 1,
    keys: [
      {
        name: "bench",
        scope: "ingest",
        sha256: hashSecret(INGEST_KEY),
        createdAt: new Date().toISOString(),
        origins: [PUBLISHER],
      },
    ],
  });
  const apiEnv = {
    AUTH: "off",
    API_METRICS_PORT: "0",
    KAFKA_BROKERS: brokers,
    KAFKA_TOPIC: `impressions-bench-${runId}`,
    KAFKA_DLQ_TOPIC: `impressions-bench-${runId}.dlq`,
    API_ROLE: "ingest",
    LOG_LEVEL: "warn",
    BATCH_MAX_EVENTS: String(BATCH_SIZE),
  };
  // The API as pm2 runs it, with the ecosystem file's node arguments.
  const api = [...apiNodeArgs(), "src/api/main.ts"];
  const event: Scenario = {
    name: "POST /event -> Kafka ack",
    server: api,
    path: "/event",
    body: impressionJson,
    eventsPerRequest: 1,
  };
  const batches: Scenario = {
    name: `POST /events (${BATCH_SIZE}/batch) -> Kafka ack`,
    server: api,
    path: "/events",
    body: batchJson,
    eventsPerRequest: BATCH_SIZE,
  };
  const batchFloor: Scenario = {
    name: `POST /events (${BATCH_SIZE}/batch), memory floor: bodies read and written to Kafka unparsed`,
    server: [...apiNodeArgs(), "bench/batch-floor-server.ts"],
    path: "/events",
    body: batchJson,
    eventsPerRequest: BATCH_SIZE,
    atPreviousRate: true,
  };
  const compareTrees = (process.env.BENCH_COMPARE_TREE ?? "").split(",").filter((tree) => tree !== "");
  const scenarios: Scenario[] = [
    {
      name: "bare node:http, JSON.parse, 204 (ceiling)",
      server: ["bench/baseline-server.ts"],
      path: "/event",
      body: impressionJson,
      eventsPerRequest: 1,
    },
    event,
    batches,
    batchFloor,
  ];
  const keyed = { AUTH: "required", API_KEYS_FILE: keysFile };
  const ranges = { IVT_IP_RANGES_FILE: ipRangesFile(join(benchDir, "ip-ranges.txt"), 5000) };
  const frontDoor: Scenario[] = [
    { name: "/event open", server: api, path: "/event", body: impressionJson, eventsPerRequest: 1, seconds: roundS },
    {
      name: "/event open, metrics off",
      server: api,
      path: "/event",
      body: impressionJson,
      env: { METRICS: "off" },
      eventsPerRequest: 1,
      seconds: roundS,
    },
    {
      name: "/event, ingest key + origin check + CORS",
      server: api,
      path: "/event",
      body: impressionJson,
      headers: { authorization: `Bearer ${INGEST_KEY}`, origin: PUBLISHER },
      env: keyed,
      eventsPerRequest: 1,
      seconds: roundS,
    },
    {
      name: "/pixel.gif open",
      server: api,
      path: "/pixel.gif",
      pathOf: openPixelPath,
      eventsPerRequest: 1,
      seconds: roundS,
    },
    {
      name: "/pixel.gif, ingest key in URL + Referer check",
      server: api,
      path: "/pixel.gif",
      pathOf: pixelPath,
      headers: { referer: `${PUBLISHER}/article` },
      env: keyed,
      eventsPerRequest: 1,
      seconds: roundS,
    },
  ];
  const classified: Scenario = {
    name: "/event from a page, traffic classified",
    server: api,
    path: "/event",
    body: pageImpressionJson,
    headers: PAGE_HEADERS,
    env: ranges,
    eventsPerRequest: 1,
  };
  const unclassified: Scenario = {
    ...classified,
    name: "/event from a page, IVT_CLASSIFICATION=off",
    env: { ...ranges, IVT_CLASSIFICATION: "off" },
  };
  for (const compareTree of compareTrees) {
    frontDoor.push({
      name: `/event open, the API of ${compareTree}`,
      server: api,
      cwd: compareTree,
      path: "/event",
      body: impressionJson,
      eventsPerRequest: 1,
      seconds: roundS,
    });
  }
  const rows: Row[] = [];
  const frontDoorRows: Row[][] = frontDoor.map(() => []);
  const classification: Pair[] = [];
  try {
    if (warmupS > 0) {
      console.error(`[bench] warm-up: POST /event, ${warmupS}s, not measured ...`);
      await run({ ...event, name: "warm-up", seconds: warmupS }, apiEnv);
    }
    for (const scenario of scenarios) {
      const rate = scenario.atPreviousRate ? Math.round(rows.at(-1)?.requestsPerSecond ?? 0) : undefined;
      const pace = rate ? `, ${rate} requests/s` : "";
      console.error(`[bench] ${scenario.name}: ${connections} connections${pace}, ${durationS}s ...`);
      rows.push(await run(scenario, apiEnv, rate));
    }
    for (let round = 1; round <= rounds; round++) {
      for (const [i, scenario] of frontDoor.entries()) {
        console.error(`[bench] round ${round}/${rounds}: ${scenario.name}, ${roundS}s ...`);
        const row = await run(scenario, apiEnv);
        frontDoorRows[i]?.push(row);
        rows.push({ ...row, name: `round ${round}: ${row.name}` });
      }
    }
    for (const [i, { a, b }] of (await warmPairs(classified, unclassified, apiEnv)).entries()) {
      classification.push({ a, b });
      rows.push({ ...a, name: `pair ${i + 1}: ${a.name}` }, { ...b, name: `pair ${i + 1}: ${b.name}` });
    }
  } finally {
    await stopKafka();
  }
  const ceiling = rows[0]?.eventsPerSecond ?? 1;
  const medianRate = (series: Row[]) => median(series.map((r) => r.eventsPerSecond));
  const [open, noMetrics, withKey, pixelOpen, pixel] = frontDoorRows.map(medianRate) as number[] as [
    number,
    number,
    number,
    number,
    number,
  ];
  const [openCpu, noMetricsCpu, withKeyCpu, pixelOpenCpu, pixelCpu] = frontDoorRows.map((series) =>
    median(series.map((r) => r.cpuMicrosPerRequest)),
  ) as [number, number, number, number, number];
  const rateRatios = classification.map(({ a, b }) => a.eventsPerSecond / b.eventsPerSecond);
  const cpuRatios = classification.map(({ a, b }) => a.cpuMicrosPerRequest / b.cpuMicrosPerRequest);
  const percent = (ratio: number) => `${ratio >= 1 ? "+" : ""}${((ratio - 1) * 100).toFixed(1)}%`;
  const comparedRows = frontDoorRows.slice(frontDoor.length - compareTrees.length);
  const change = (value: number, base: number) =>
    `${value >= base ? "+" : ""}${((value / base - 1) * 100).toFixed(1)}%`;
  const batchRow = rows.find((row) => row.name === batches.name);
  const floorRow = rows.find((row) => row.name === batchFloor.name);
  const report = [
    `Ingest benchmark ${new Date().toISOString()} (node ${process.version}, ${connections} connections, ${durationS}s each, front-door rounds ${roundS}s)`,
    "",
    table(rows, ceiling),
    "",
    `/events memory: peak RSS ${batchRow?.rssPeakMb.toFixed(0)} MB at ${Math.round(batchRow?.eventsPerSecond ?? 0).toLocaleString("en-US")} ` +
      `events/s (target ≤ 200 MB); the floor, the same bodies at the same rate written to Kafka unparsed, ` +
      `${floorRow?.rssPeakMb.toFixed(0)} MB (${floorRow?.rssStartMb.toFixed(0)} MB at start)`,
    "",
    `Front door, median of ${rounds} alternated rounds: /event with key + origin + CORS ${Math.round(withKey)} ` +
      `events/s against ${Math.round(open)} open (${change(withKey, open)}), ${Math.round(withKeyCpu)} against ` +
      `${Math.round(openCpu)} CPU µs/request (${change(withKeyCpu, openCpu)}); /pixel.gif with key ` +
      `${Math.round(pixel)} events/s against ${Math.round(pixelOpen)} open (${change(pixel, pixelOpen)}), ` +
      `${Math.round(pixelCpu)} against ${Math.round(pixelOpenCpu)} µs/request (${change(pixelCpu, pixelOpenCpu)}); ` +
      `metrics: /event open ${Math.round(open)} events/s against ${Math.round(noMetrics)} with METRICS=off ` +
      `(${change(open, noMetrics)}), ${Math.round(openCpu)} against ${Math.round(noMetricsCpu)} µs/request ` +
      `(${change(openCpu, noMetricsCpu)})`,
    "",
    `Invalid-traffic classification, ${classification.length} pairs of ${pairS} s loads on two warm API ` +
      `processes (classified, IVT_CLASSIFICATION=off), back to back: /event from a page, throughput classified / ` +
      `off, median of the pairs ${percent(median(rateRatios))} (target: at most 5% fewer; pairs: ` +
      `${rateRatios.map(percent).join(", ")}); CPU µs/request classified / off, median ${percent(median(cpuRatios))} ` +
      `(pairs: ${cpuRatios.map(percent).join(", ")})`,
    ...compareTrees.flatMap((tree, i) => {
      const series = comparedRows[i] ?? [];
      const compared = medianRate(series);
      const comparedCpu = median(series.map((r) => r.cpuMicrosPerRequest));
      return [
        "",
        `This tree against ${tree}, median of ${rounds} alternated rounds: /event open ${Math.round(open)} ` +
          `events/s against ${Math.round(compared)} (${change(open, compared)}), ${Math.round(openCpu)} against ` +
          `${Math.round(comparedCpu)} CPU µs/request (${change(openCpu, comparedCpu)})`,
      ];
    }),
  ].join("\n");
  writeFileSync(join(benchDir, "ingest.md"), `${report}\n`);
  console.log(report);
}

await main();
