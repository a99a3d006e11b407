import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClickHouseClient } from "@clickhouse/client";
import { destination, pino } from "pino";
import { beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.ts";
import type { Config } from "../../src/config.ts";
import { createImpressionProducer } from "../../src/kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../../src/kafka/topics.ts";
import { createWorker } from "../../src/worker/worker.ts";
import { repoRoot } from "../../stack/paths.ts";
import { checkExactness, isExact } from "../chaos/exactness.ts";
import { createTestDatabase } from "../support/clickhouse.ts";
import { testConfig } from "../support/config.ts";
import { type ProxiedKafka, startProxiedKafka } from "../support/proxied-kafka.ts";
import { useClosers } from "../support/system.ts";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";
import { waitFor } from "../support/wait.ts";
import { type Answer, PacedLoad } from "./paced-load.ts";

// Cuts each of the four connections the pipeline lives on, without a reset (a TCP proxy that stops forwarding),
// mid-batch, under a steady load with duplicates; heals it; and checks that every event that got a 2xx is counted
// exactly once and that counting resumes without restarting anything. Its own broker (listeners behind proxies),
// topic, group and database; the shared Valkey and ClickHouse behind proxies of its own. The worker's log is left in
// .data/test/network-faults-*.log.

const closers = useClosers();
let kafka: ProxiedKafka;
let valkeyProxy: TcpProxy;
let clickhouseProxy: TcpProxy;
/** The test's own view of the database, not through a proxy. */
let clickhouse: ClickHouseClient;
let apiConfig: Config;
let load: PacedLoad;
let leaseLost = false;
const logFile = join(repoRoot, ".data/test", `network-faults-${randomBytes(3).toString("hex")}.log`);

/**
 * Sender-side slack over PRODUCE_TIMEOUT_MS for a 503: the sender, the API, the worker and the proxies share one
 * event loop on a 2-core machine that also runs the engines, so the HTTP round trip and a timer's lateness count.
 */
const ANSWER_SLACK_MS = 250;
/**
 * How soon after a heal every event accepted so far must be counted: the timeout that notices the dead connection
 * (5 s for Valkey and ClickHouse) if it has not fired yet, the consumer's longest backoff (5 s) and a few batches.
 */
const CATCH_UP_MS = 15_000;
/**
 * The same after the worker's Kafka cut: its forgotten connections are noticed by the consumer's request timeout
 * (25 s from the cut, 13 s after this heal), then the worker rejoins its group.
 */
const KAFKA_CATCH_UP_MS = 40_000;

const isInsert = (chunk: Buffer) => chunk.toString("latin1", 0, 512).includes("INSERT");
const isLookup = (chunk: Buffer) => chunk.includes("SELECT DISTINCT kind, id");
const isClaim = (chunk: Buffer) => chunk.includes("seen:");
/** A Kafka request whose api key is Produce (0): the 4-byte size, then the key. */
const isProduce = (chunk: Buffer) => chunk.length >= 8 && chunk.readInt16BE(4) === 0;

beforeAll(async () => {
  kafka = await startProxiedKafka();
  closers.push(() => kafka.stop());
  const name = `faults-${randomBytes(4).toString("hex")}`;
  const db = await createTestDatabase(
    testConfig({
      KAFKA_BROKERS: kafka.worker.brokers.join(","),
      KAFKA_TOPIC: name,
      KAFKA_DLQ_TOPIC: `${name}.dlq`,
      KAFKA_CONSUMER_GROUP: `${name}-group`,
      KAFKA_PARTITIONS: "4",
      WORKER_BATCH_MAX_WAIT_MS: "100",
      WORKER_ID: `${name}-worker`,
      API_ROLE: "ingest",
    }),
  );
  closers.push(() => db.drop());
  clickhouse = db.clickhouse;
  const valkeyUrl = new URL(db.config.VALKEY_URL);
  const clickhouseUrl = new URL(db.config.CLICKHOUSE_URL);
  valkeyProxy = await startTcpProxy({ host: valkeyUrl.hostname, port: Number(valkeyUrl.port) });
  clickhouseProxy = await startTcpProxy({ host: clickhouseUrl.hostname, port: Number(clickhouseUrl.port) });
  closers.push(
    () => valkeyProxy.close(),
    () => clickhouseProxy.close(),
  );
  await ensureTopics(db.config.KAFKA_BROKERS, "faults-test", impressionTopics(db.config));

  const workerConfig: Config = {
    ...db.config,
    VALKEY_URL: `redis://${valkeyProxy.address}`,
    CLICKHOUSE_URL: `http://${clickhouseProxy.address}`,
  };
  mkdirSync(join(repoRoot, ".data/test"), { recursive: true });
  const logger = pino({ level: "info" }, destination({ dest: logFile, sync: true }));
  const worker = createWorker(workerConfig, logger, undefined, undefined, undefined, () => {
    leaseLost = true;
  });
  closers.push(() => worker.stop());
  await worker.start();

  apiConfig = { ...db.config, KAFKA_BROKERS: kafka.api.brokers };
  const producer = createImpressionProducer(apiConfig);
  closers.push(() => producer.close());
  const app = await buildApp({ config: apiConfig, producer, checks: {}, logger: false });
  closers.push(() => app.close());
  await app.listen({ host: "127.0.0.1", port: 0 });
  const api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  load = new PacedLoad(api, { intervalMs: 50, batchSize: 10, duplicateRate: 0.1, requestTimeoutMs: 10_000 });
  load.start();
  closers.push(async () => load.abort());
  await waitFor("the first events to be counted", 30_000, async () => ((await stored()).size > 0 ? true : undefined));
}, 180_000);

/** The ids the raw table holds. */
async function stored(): Promise<Set<string>> {
  const result = await clickhouse.query({ query: "SELECT id FROM impressions", format: "JSONCompactEachRow" });
  return new Set((await result.json<[string]>()).map(([id]) => id));
}

/**
 * Waits (at most `withinMs`) until every id accepted so far is stored; then nothing may be stored twice, the rollup
 * must agree, and the worker must still hold its name. Returns how long it took.
 */
async function expectCaughtUp(what: string, withinMs = CATCH_UP_MS): Promise<number> {
  const started = Date.now();
  const accepted = [...load.accepted];
  await waitFor(
    `every accepted event counted ${what}`,
    withinMs,
    async () => {
      load.check();
      const ids = await stored();
      return accepted.every((id) => ids.has(id)) ? true : undefined;
    },
    250,
  );
  const exactness = await checkExactness(apiConfig.CLICKHOUSE_URL, load.accepted, apiConfig.CLICKHOUSE_DATABASE);
  expect(exactness.doubleCounted).toBe(0);
  expect(exactness.rollupTotal).toBe(exactness.storedRows);
  expect(leaseLost).toBe(false);
  return Date.now() - started;
}

/**
 * Keeps a connection cut for `ms` while the load goes on, then heals it: `resume` delivers what was held, `forget`
 * leaves the connections of before the cut silent for good (only the clients' own timeouts get them out).
 */
async function holdCut(
  proxy: TcpProxy,
  ms: number,
  heal: "resume" | "forget",
  beforeHeal?: () => void,
): Promise<{ cutAt: number; healedAt: number }> {
  const cutAt = Date.now();
  await sleep(ms);
  beforeHeal?.();
  proxy.heal({ forget: heal === "forget" });
  return { cutAt, healedAt: Date.now() };
}

/** Resolves with `promise`, or fails naming `what` after `ms`. */
async function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function log(line: string): void {
  console.log(`[faults] ${line}`);
}

/** Armed before the Valkey heal: the worker's first replay lookup after it cuts the ClickHouse connection. */
let lookupCut: Promise<void>;

describe("network faults: a connection cut without a reset, mid-batch, then healed", { timeout: 120_000 }, () => {
  it("the worker's connection to Valkey: its claims were applied, their answer is dropped, for longer than the lease", async () => {
    await valkeyProxy.cutAt("up", isClaim, "after");
    // 16 s: past the command timeout (5 s), the claims' takeover time and the worker name's lease (15 s).
    const { healedAt } = await holdCut(valkeyProxy, 16_000, "forget", () => {
      lookupCut = clickhouseProxy.cutAt("up", isLookup, "before");
    });
    // The retried batch finds its own claims (replays) and asks ClickHouse about them: the worker claims again.
    await within("a replay lookup after the Valkey heal", CATCH_UP_MS, lookupCut);
    log(`valkey: claims answered again, and replays looked up, ${Date.now() - healedAt} ms after the heal`);
  });

  it("the worker's connection to ClickHouse: a replay lookup is dropped", async () => {
    await lookupCut;
    await holdCut(clickhouseProxy, 8_000, "forget");
    const ms = await expectCaughtUp("after the lookup was cut");
    log(`clickhouse (lookup dropped): caught up ${ms} ms after the heal`);
  });

  it("the worker's connection to ClickHouse: an insert was sent, its answer is dropped", async () => {
    await clickhouseProxy.seen("up", isInsert);
    await clickhouseProxy.cutAt("down", () => true, "before");
    await holdCut(clickhouseProxy, 8_000, "forget");
    const ms = await expectCaughtUp("after the insert's answer was cut");
    log(`clickhouse (answer dropped): caught up ${ms} ms after the heal`);
  });

  it("the worker's connection to ClickHouse: an insert is held, to land after the worker gave up on it", async () => {
    await clickhouseProxy.cutAt("up", isInsert, "before");
    await holdCut(clickhouseProxy, 8_000, "resume");
    const ms = await expectCaughtUp("after the insert was held");
    log(`clickhouse (insert held, delivered late): caught up ${ms} ms after the heal`);
  });

  it("the worker's connection to Kafka while it inserts a batch, for longer than its session", async () => {
    await clickhouseProxy.seen("up", isInsert);
    kafka.worker.proxy.blackhole();
    // 12 s: past the session timeout (10 s), so the broker drops the member while its batch is in hand.
    await holdCut(kafka.worker.proxy, 12_000, "forget");
    const ms = await expectCaughtUp("after the worker's Kafka cut", KAFKA_CATCH_UP_MS);
    log(`worker kafka: caught up ${ms} ms after the heal`);
  });

  it("the API's connection to Kafka: a produce request was sent, its ack is dropped; every answer is a 503 in time", async () => {
    await kafka.api.proxy.cutAt("up", isProduce, "after");
    // 6 s: past PRODUCE_TIMEOUT_MS (2 s), which is also the producer's request timeout.
    const { cutAt, healedAt } = await holdCut(kafka.api.proxy, 6_000, "forget");
    const during = load.answers.filter((a) => a.sentAt >= cutAt && a.sentAt + a.ms <= healedAt);
    expect(during.length).toBeGreaterThan(20);
    for (const answer of during) expect(answer.status).toBe(503);
    const slowest = Math.max(...during.map((a) => a.ms));
    expect(slowest).toBeLessThanOrEqual(apiConfig.PRODUCE_TIMEOUT_MS + ANSWER_SLACK_MS);
    const firstAccepted = await waitFor("a 2xx after the heal", CATCH_UP_MS, () =>
      load.answers.find((a: Answer) => a.sentAt >= healedAt && a.status === 202),
    );
    log(
      `api kafka: ${during.length} answers during the cut, all 503, slowest ${slowest} ms; ` +
        `first 2xx for a request sent ${firstAccepted.sentAt - healedAt} ms after the heal`,
    );
    await expectCaughtUp("after the API's Kafka cut");
  });

  it("counts every accepted event exactly once, and every answer came within PRODUCE_TIMEOUT_MS", async () => {
    await load.stop();
    await expectCaughtUp("at the end");
    const exactness = await checkExactness(apiConfig.CLICKHOUSE_URL, load.accepted, apiConfig.CLICKHOUSE_DATABASE);
    const statuses = Object.groupBy(load.answers, (a) => a.status);
    log(
      `end: ${JSON.stringify(exactness)}; answers ${Object.entries(statuses).map(([s, a]) => `${s}: ${a?.length}`)}; log ${logFile}`,
    );
    expect(isExact(exactness, load.accepted.size)).toBe(true);
    expect(exactness.notAcceptedButStored).toBe(0);
    const slowest = Math.max(...load.answers.map((a) => a.ms));
    expect(slowest).toBeLessThanOrEqual(apiConfig.PRODUCE_TIMEOUT_MS + ANSWER_SLACK_MS);
  });
});
