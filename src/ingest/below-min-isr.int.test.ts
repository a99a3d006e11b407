import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClickHouseClient } from "@clickhouse/client";
import { findErrorBy, ProduceAcks, Producer, stringSerializers } from "@platformatic/kafka";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { useKafkaCluster } from "../../test/support/kafka-cluster.ts";
import { useClosers } from "../../test/support/system.ts";
import { waitFor } from "../../test/support/wait.ts";
import { buildApp } from "../api/app.ts";
import type { Config } from "../config.ts";
import { createImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { createWorker } from "../worker/worker.ts";

// Stops and kills brokers, so it runs a three-broker cluster of its own (replication 3, min.insync.replicas 2);
// Valkey and ClickHouse are the shared test engines. One API and one worker live through the whole file.
const cluster = useKafkaCluster();
const closers = useClosers();
let config: Config;
let clickhouse: ClickHouseClient;
let app: FastifyInstance;
const accepted: string[] = [];

beforeAll(async () => {
  const name = `isr-${randomBytes(4).toString("hex")}`;
  const db = await createTestDatabase(
    testConfig({
      API_ROLE: "ingest",
      KAFKA_BROKERS: cluster.brokers.join(","),
      KAFKA_REPLICATION_FACTOR: "3",
      KAFKA_TOPIC: name,
      KAFKA_DLQ_TOPIC: `${name}.dlq`,
      KAFKA_CONSUMER_GROUP: `${name}-group`,
      KAFKA_PARTITIONS: "2",
      WORKER_BATCH_MAX_WAIT_MS: "100",
    }),
  );
  closers.push(() => db.drop());
  ({ config, clickhouse } = db);
  await ensureTopics(config.KAFKA_BROKERS, "isr-test", impressionTopics(config));
  const worker = createWorker(config, pino({ level: "warn" }));
  closers.push(() => worker.stop());
  await worker.start();
  const producer = createImpressionProducer(config);
  closers.push(() => producer.close());
  app = await buildApp({ config, producer, checks: {}, logger: false });
  closers.push(() => app.close());
  // A new topic's leaders take a moment to be known to every broker; the first writes may get 503 meanwhile.
  await waitFor("the new topic to take writes", 10_000, async () => (await postEvent()).status === 202 || undefined);
}, 120_000);

let sent = 0;
/** POSTs one new event (remembered if accepted); its status, body and how long the answer took. */
async function postEvent(): Promise<{ status: number; body: unknown; ms: number }> {
  const id = `isr-${++sent}`;
  const started = Date.now();
  const response = await app.inject({
    method: "POST",
    url: "/event",
    headers: { "content-type": "application/json" },
    payload: { id, ts: Date.now(), userId: "u1", adId: "ad-isr" },
  });
  if (response.statusCode < 300) accepted.push(id);
  return { status: response.statusCode, body: response.json(), ms: Date.now() - started };
}

/** Several rounds of concurrent events: every one must be refused with a 503 in time. */
async function expectRefusedInTime(): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const answers = await Promise.all(Array.from({ length: 5 }, () => postEvent()));
    for (const answer of answers) {
      expect(answer).toMatchObject({ status: 503, body: { error: "kafka_unavailable" } });
      expect(answer.ms).toBeLessThanOrEqual(config.PRODUCE_TIMEOUT_MS + 250);
    }
  }
}

/** Posts until an event is accepted; every answer before it must be a 503. Returns ms from the call to the 202. */
async function msUntilAccepted(): Promise<number> {
  const returned = Date.now();
  for (;;) {
    const answer = await postEvent();
    if (answer.status === 202) return Date.now() - returned;
    expect(answer.status).toBe(503);
    if (Date.now() - returned > 15_000) return Number.POSITIVE_INFINITY;
    await sleep(200);
  }
}

/** What the brokers answer one acks=all write, with no client retry: "ok" or the error's Kafka name. */
async function brokerAnswer(): Promise<string> {
  const probe = new Producer({
    clientId: "isr-test-probe",
    bootstrapBrokers: cluster.brokers.filter((_, i) => cluster.nodes[i]?.running),
    serializers: stringSerializers,
    retries: 0,
  });
  try {
    await probe.send({ messages: [{ topic: config.KAFKA_TOPIC, key: "probe", value: "{}" }], acks: ProduceAcks.ALL });
    return "ok";
  } catch (error) {
    return findErrorBy(error as Error, "apiId", "NOT_ENOUGH_REPLICAS")?.apiId ?? String(error);
  } finally {
    await probe.close();
  }
}

/** How many times each id is stored in ClickHouse. */
async function storedTimes(): Promise<Map<string, number>> {
  const result = await clickhouse.query({
    query: "SELECT id, count() AS times FROM impressions GROUP BY id",
    format: "JSONEachRow",
  });
  const rows = await result.json<{ id: string; times: string }>();
  return new Map(rows.map((row) => [row.id, Number(row.times)]));
}

describe("with two of three brokers down (below min.insync.replicas 2)", () => {
  it("accepts while all three brokers are up", async () => {
    for (let i = 0; i < 20; i++) expect((await postEvent()).status).toBe(202);
  });

  it("two stopped: the broker left refuses (NOT_ENOUGH_REPLICAS) and /event answers 503 in time, never 2xx", async () => {
    await cluster.nodes[1]?.stop();
    await cluster.nodes[2]?.stop();
    expect(await brokerAnswer()).toBe("NOT_ENOUGH_REPLICAS");
    await expectRefusedInTime();
  });

  it("accepts again within 10 s of one broker's return, without a restart", async () => {
    await cluster.nodes[1]?.start();
    expect(await msUntilAccepted()).toBeLessThan(10_000);
    for (let i = 0; i < 20; i++) expect((await postEvent()).status).toBe(202);
  });

  it("one stopped and one crashed (SIGKILL): 503 in time, never 2xx; accepts within 10 s of a return", async () => {
    await cluster.nodes[1]?.kill();
    await expectRefusedInTime();
    await cluster.nodes[2]?.start();
    expect(await msUntilAccepted()).toBeLessThan(10_000);
    for (let i = 0; i < 20; i++) expect((await postEvent()).status).toBe(202);
  });

  it("the worker waited through the outages and counted every accepted event exactly once", async () => {
    const stored = await waitFor("every accepted event in ClickHouse", 30_000, async () => {
      const times = await storedTimes();
      return accepted.every((id) => times.has(id)) ? times : undefined;
    });
    expect(accepted.length).toBeGreaterThanOrEqual(61);
    expect(accepted.filter((id) => stored.get(id) !== 1)).toEqual([]);
    // A refused event may still land (its sender would send it again): it too is counted at most once.
    expect([...stored].filter(([, times]) => times !== 1)).toEqual([]);
  });
});
