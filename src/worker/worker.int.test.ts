import { join } from "node:path";
import {
  Consumer,
  ProduceAcks,
  Producer,
  producerSendsChannel,
  stringDeserializers,
  stringSerializers,
} from "@platformatic/kafka";
import { Valkey } from "iovalkey";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot, testPort } from "../../stack/paths.ts";
import { startValkeyCluster } from "../../stack/valkey.ts";
import { useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { groupDrained, ownTopicsConfig } from "../../test/support/kafka.ts";
import type { Config } from "../config.ts";
import { ClaimStore } from "../dedup/claims.ts";
import { encodeImpression } from "../impression/codec.ts";
import type { Impression } from "../impression/schema.ts";
import type { ConsumedMessage } from "../kafka/consumer.ts";
import { createRegistry } from "../metrics/registry.ts";
import { workerMetrics } from "../metrics/worker.ts";
import { DeadLetters } from "./dead-letters.ts";
import { createDecoder } from "./decode.ts";
import { processBatch } from "./pipeline.ts";
import { createWorker, type Worker } from "./worker.ts";

const logger = pino({ level: "warn" });
const PARTITIONS = 4;
const db = useTestDatabase(() => testConfig());
const running: Worker[] = [];
const closing: (() => Promise<unknown>)[] = [];

afterAll(async () => {
  await Promise.all(running.map((w) => w.stop()));
  await Promise.all(closing.map((close) => close()));
});

/** A config of its own per test: its own topics, group and Valkey keys, the file's database. */
const scenario = (overrides: Record<string, string> = {}) =>
  ownTopicsConfig("w", db.config.CLICKHOUSE_DATABASE, { KAFKA_PARTITIONS: String(PARTITIONS), ...overrides });

async function startWorker(config: Config, timings?: { takeoverAfterMs: number; insertTimeoutMs: number }) {
  const worker = createWorker(config, logger, timings);
  running.push(worker);
  await worker.start();
  return worker;
}

async function produce(config: Config, records: { key: string; value: string; timestamp?: bigint }[]): Promise<void> {
  // Idempotent: a produce request retried on a busy machine must not write the records twice.
  const producer = new Producer({
    clientId: "worker-test",
    bootstrapBrokers: config.KAFKA_BROKERS,
    serializers: stringSerializers,
    idempotent: true,
  });
  await producer.send({ messages: records.map((r) => ({ topic: config.KAFKA_TOPIC, ...r })) });
  await producer.close();
}

/** The ad is the id's prefix: each test reads its own rollup rows. */
const impression = (id: string): Impression => ({
  id,
  ts: Date.now() - 1000,
  userId: "u1",
  adId: id.split("-")[0] ?? id,
});
const record = (id: string, key = id) => ({ key, value: encodeImpression(impression(id)) });

async function stored(prefix: string): Promise<{ rows: number; distinct: number; rollup: number }> {
  const result = await db.clickhouse.query({
    query: `SELECT count() AS rows, uniqExact(id) AS distinct,
        (SELECT sum(impressions) FROM impressions_per_minute WHERE ad_id = {ad:String}) AS rollup
      FROM impressions WHERE startsWith(id, {prefix:String})`,
    query_params: { prefix, ad: prefix.replace(/-$/, "") },
    format: "JSONEachRow",
  });
  const [row] = await result.json<Record<string, string>>();
  return { rows: Number(row?.rows), distinct: Number(row?.distinct), rollup: Number(row?.rollup) };
}

/** Until the group committed everything on the topic: every message was handled. */
const drained = (config: Config, timeoutMs?: number) =>
  groupDrained(config.KAFKA_BROKERS, config.KAFKA_CONSUMER_GROUP, config.KAFKA_TOPIC, PARTITIONS, timeoutMs);

/** Reads the topic from the start without a group commit, as a worker that is about to crash would. */
async function readAll(config: Config, count: number): Promise<ConsumedMessage[]> {
  const reader = new Consumer({
    clientId: "worker-test-reader",
    groupId: `${config.KAFKA_CONSUMER_GROUP}-reader`,
    bootstrapBrokers: config.KAFKA_BROKERS,
    autocommit: false,
    maxWaitTime: 200,
  });
  const stream = await reader.consume({ topics: [config.KAFKA_TOPIC], mode: "earliest", autocommit: false });
  const messages: ConsumedMessage[] = [];
  for await (const m of stream) {
    messages.push({ ...m, key: m.key, value: m.value });
    if (messages.length === count) break;
  }
  await stream.close();
  await reader.close();
  return messages;
}

/**
 * The acks of each send to `topic` from now on, as @platformatic/kafka's diagnostics channel reports the send's
 * options: what the produce requests carry (a Producer's own `acks` option is not used by its sends).
 */
function sendAcksTo(topic: string): number[] {
  const acks: number[] = [];
  const start = (context: { options?: { acks?: number; messages?: { topic: string }[] } }) => {
    if (context.options?.messages?.some((m) => m.topic === topic)) acks.push(context.options.acks ?? Number.NaN);
  };
  const handlers = { start, end() {}, asyncStart() {}, asyncEnd() {}, error() {} };
  producerSendsChannel.subscribe(handlers as never);
  closing.push(async () => producerSendsChannel.unsubscribe(handlers as never));
  return acks;
}

/** The claims of `ids` as Valkey holds them once the dedup window is over: gone. No wait for the window. */
async function expireClaims(config: Config, ids: string[]): Promise<void> {
  const valkey = new Valkey(config.VALKEY_URL);
  try {
    const expired = await Promise.all(ids.map((id) => valkey.pexpireat(`seen:${config.KAFKA_TOPIC}:${id}`, 1)));
    // Every id was claimed: a missing claim here would make the test pass for another reason.
    expect(expired.every((done) => done === 1)).toBe(true);
  } finally {
    valkey.disconnect();
  }
}

function pipelineAs(config: Config, owner: string) {
  const valkey = new Valkey(config.VALKEY_URL);
  const dlq = new Producer({ clientId: "t", bootstrapBrokers: config.KAFKA_BROKERS, serializers: stringSerializers });
  closing.push(
    async () => valkey.disconnect(),
    () => dlq.close(),
  );
  const claims = new ClaimStore(valkey, {
    keyPrefix: `seen:${config.KAFKA_TOPIC}:`,
    windowSeconds: config.DEDUP_WINDOW_SECONDS,
    owner,
    takeoverAfterMs: 1_000,
  });
  const deps = {
    decode: createDecoder({ maxFutureSkewMs: config.MAX_FUTURE_SKEW_MS, retentionDays: config.RETENTION_DAYS }),
    dedupWindowMs: config.DEDUP_WINDOW_SECONDS * 1000,
    claims,
    clickhouse: db.clickhouse,
    deadLetters: new DeadLetters(dlq, config.KAFKA_DLQ_TOPIC),
    logger,
    takeoverAfterMs: 1_000,
    insertTimeoutMs: 500,
  };
  return { claims, deps };
}

describe("the worker counts each impression once", () => {
  it("drops copies inside one batch and copies in later batches", async () => {
    const config = await scenario();
    const ids = Array.from({ length: 300 }, (_, i) => `dup1-${i}`);
    await produce(config, [...ids.map((id) => record(id)), ...ids.slice(0, 50).map((id) => record(id))]);
    await startWorker(config);
    await drained(config);
    await produce(
      config,
      ids.slice(100, 200).map((id) => record(id)),
    );
    await drained(config);
    expect(await stored("dup1-")).toEqual({ rows: 300, distinct: 300, rollup: 300 });
  });

  it("counts a message with a field it does not know (from a newer API), and stores the known fields", async () => {
    const config = await scenario();
    const newer = (id: string) => ({ key: id, value: JSON.stringify({ ...impression(id), placement: "top" }) });
    await produce(config, [newer("newer-1"), newer("newer-2"), record("newer-3")]);
    await startWorker(config);
    await drained(config);
    expect(await stored("newer-")).toEqual({ rows: 3, distinct: 3, rollup: 3 });
  });

  it("two workers in one group: a copy that lands on another partition is still a duplicate", async () => {
    const config = await scenario();
    await Promise.all([startWorker(config), startWorker(config)]);
    const ids = Array.from({ length: 200 }, (_, i) => `two-${i}`);
    await produce(
      config,
      ids.map((id) => record(id)),
    );
    await drained(config);
    // Keyed otherwise, each copy goes to some other partition, most likely the other worker's.
    await produce(
      config,
      ids.map((id) => record(id, `other-${id}`)),
    );
    await drained(config);
    expect(await stored("two-")).toEqual({ rows: 200, distinct: 200, rollup: 200 });
  });

  it("two workers claiming in a Valkey cluster: copies in the same and in later batches count once", async () => {
    // Ports of its own (the claims tests use 17001-17003), below the ephemeral range with their bus ports
    // (port + 10000).
    const cluster = await startValkeyCluster({
      ports: [17011, 17012, 17013].map(testPort),
      dataDir: join(repoRoot, ".data/test/worker-valkey-cluster"),
    });
    closing.push(() => cluster.stop());
    const config = await scenario({ VALKEY_URL: cluster.urls.join(","), VALKEY_CLUSTER: "true" });
    await Promise.all([startWorker(config), startWorker(config)]);
    const ids = Array.from({ length: 500 }, (_, i) => `vc-${i}`);
    await produce(config, [
      ...ids.map((id) => record(id)),
      ...ids.slice(0, 100).map((id) => record(id, `other-${id}`)),
    ]);
    await drained(config);
    await produce(
      config,
      ids.slice(200, 300).map((id) => record(id, `late-${id}`)),
    );
    await drained(config);
    expect(await stored("vc-")).toEqual({ rows: 500, distinct: 500, rollup: 500 });
  });

  it("after the dedup window the same id counts again", async () => {
    const config = await scenario({ DEDUP_WINDOW_SECONDS: "3600" });
    await startWorker(config);
    await produce(config, [record("win-1"), record("win-2")]);
    await drained(config);
    await produce(config, [record("win-1")]);
    await drained(config);
    expect(await stored("win-")).toMatchObject({ rows: 2 });
    await expireClaims(config, ["win-1"]);
    // A copy sent anew after the window: a recent Kafka timestamp, so its `new` is trusted.
    await produce(config, [record("win-1")]);
    await drained(config);
    expect(await stored("win-")).toEqual({ rows: 3, distinct: 2, rollup: 3 });
  });

  it("a new consumer group reading the topic from the start after the window counts nothing again", async () => {
    const config = await scenario({ DEDUP_WINDOW_SECONDS: "60" });
    // Accepted two windows ago, as the messages a new group reads from the start are: older than a claim lives.
    const acceptedAt = BigInt(Date.now() - 120_000);
    const old = (id: string) => ({ ...record(id), timestamp: acceptedAt });
    const stored1 = Array.from({ length: 150 }, (_, i) => `regroup-${i}`);
    const first = await startWorker(config);
    await produce(
      config,
      stored1.map((id) => old(id)),
    );
    await drained(config);
    await first.stop();
    // Accepted while no worker ran: never stored, as after a partition left uncommitted past the window.
    const neverStored = Array.from({ length: 50 }, (_, i) => `regroup-late-${i}`);
    await produce(
      config,
      neverStored.map((id) => old(id)),
    );
    await expireClaims(config, stored1);
    expect(await stored("regroup-")).toEqual({ rows: 150, distinct: 150, rollup: 150 });

    // A group with no committed offsets starts at the earliest offset: every message again, claims expired.
    const fresh = { ...config, KAFKA_CONSUMER_GROUP: `${config.KAFKA_CONSUMER_GROUP}-new` };
    await startWorker(fresh);
    await drained(fresh);
    expect(await stored("regroup-")).toEqual({ rows: 200, distinct: 200, rollup: 200 });
  });

  it("its metrics balance: consumed = counted + duplicates + dead-lettered, and counted = what ClickHouse holds", async () => {
    const config = await scenario();
    const registry = createRegistry();
    const worker = createWorker(config, logger, undefined, workerMetrics(registry));
    running.push(worker);
    const ids = Array.from({ length: 200 }, (_, i) => `books-${i}`);
    // 200 distinct, 30 copies in the same batch, 2 poison; then 40 copies in a later batch, 20 keyed elsewhere.
    await produce(config, [
      ...ids.map((id) => record(id)),
      ...ids.slice(0, 30).map((id) => record(id)),
      { key: "bad-json", value: "{not json" },
      { key: "empty", value: "" },
    ]);
    await worker.start();
    await drained(config);
    await produce(config, [
      ...ids.slice(50, 90).map((id) => record(id)),
      ...ids.slice(90, 110).map((id) => record(id, `elsewhere-${id}`)),
    ]);
    await drained(config);

    const value = async (name: string, labels: Record<string, string> = {}) => {
      const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
      const matches = metric?.values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)) ?? [];
      return matches.reduce((sum, v) => sum + v.value, 0);
    };
    const consumed = await value("impressions_consumed_total");
    const counted = await value("impressions_counted_total");
    const duplicates = await value("impressions_duplicates_total");
    const deadLettered = await value("impressions_dead_lettered_total");
    expect({ consumed, counted, duplicates, deadLettered }).toEqual({
      consumed: 292,
      counted: 200,
      duplicates: 90,
      deadLettered: 2,
    });
    expect(await value("impressions_duplicates_total", { stage: "batch" })).toBeGreaterThanOrEqual(30);
    expect(await value("impressions_dead_lettered_total", { reason: "malformed_json" })).toBe(1);
    expect(await value("impressions_dead_lettered_total", { reason: "empty_value" })).toBe(1);
    expect((await stored("books-")).distinct).toBe(counted);
    expect(await value("worker_last_commit_timestamp_seconds")).toBeGreaterThan(Date.now() / 1000 - 60);
    const steps = (await registry.getMetricsAsJSON()).find((m) => m.name === "worker_step_duration_seconds");
    const timed = new Set(
      steps?.values
        .filter((v) => (v as { metricName?: string }).metricName?.endsWith("_count"))
        .map((v) => v.labels.step),
    );
    expect([...timed].sort()).toEqual(["claim", "commit", "dead-letter", "decode", "insert", "lookup"]);
  });

  it("sends poison messages to the DLQ with the reason and acks=all, and keeps going on the same partition", async () => {
    const config = await scenario({ KAFKA_PARTITIONS: "1" });
    const dlqAcks = sendAcksTo(config.KAFKA_DLQ_TOPIC);
    const producedAt = BigInt(Date.now() - 5_000);
    await produce(config, [
      record("poison-1"),
      { key: "bad-json", value: "{not json", timestamp: producedAt },
      {
        key: "bad-schema",
        value: JSON.stringify({ id: "x", ts: "yesterday", userId: "u", adId: "a" }),
        timestamp: producedAt + 1n,
      },
      record("poison-2"),
    ]);
    await startWorker(config);
    await drained(config);
    expect(await stored("poison-")).toMatchObject({ rows: 2 });

    const reader = new Consumer({
      clientId: "worker-test-dlq",
      groupId: `${config.KAFKA_CONSUMER_GROUP}-dlq-reader`,
      bootstrapBrokers: config.KAFKA_BROKERS,
      deserializers: stringDeserializers,
      maxWaitTime: 200,
    });
    const stream = await reader.consume({ topics: [config.KAFKA_DLQ_TOPIC], mode: "earliest" });
    const letters: { reason: string; code: string; key: string; source: { offset: string; timestamp: string } }[] = [];
    for await (const m of stream) {
      letters.push(JSON.parse(m.value));
      if (letters.length === 2) break;
    }
    await stream.close();
    await reader.close();
    // Where it came from, why (the code) and when it was produced (its Kafka timestamp): what `npm run dlq` shows.
    expect(letters.map((l) => [l.key, l.source.offset, l.code, l.source.timestamp])).toEqual([
      ["bad-json", "1", "malformed_json", String(producedAt)],
      ["bad-schema", "2", "invalid_impression", String(producedAt + 1n)],
    ]);
    expect(letters[0]?.reason).toContain("malformed JSON");
    expect(letters[1]?.reason).toContain("ts must be a number");
    // Every replica in sync has a dead letter before its source offset is committed.
    expect(dlqAcks.length).toBeGreaterThan(0);
    expect(new Set(dlqAcks)).toEqual(new Set([ProduceAcks.ALL]));
  });

  it("a worker that died after claiming, before inserting: the next one takes the claims over and stores them", async () => {
    const config = await scenario({ KAFKA_PARTITIONS: "1" });
    await produce(
      config,
      Array.from({ length: 100 }, (_, i) => record(`crash1-${i}`)),
    );
    const messages = await readAll(config, 100);
    const dead = pipelineAs(config, "dead-worker");
    await dead.claims.claim(messages.map((m) => ({ key: JSON.parse(String(m.value)).id, position: m })));
    await startWorker(config, { takeoverAfterMs: 1_000, insertTimeoutMs: 500 });
    await drained(config);
    expect(await stored("crash1-")).toEqual({ rows: 100, distinct: 100, rollup: 100 });
  });

  it("counts each kind once per impression id, by kind and id, through a crash's replay and later copies", async () => {
    const config = await scenario({ KAFKA_PARTITIONS: "1" });
    const ids = Array.from({ length: 40 }, (_, i) => `kinds-${i}`);
    // One ts for all: a replay's lookup must tell the kinds of an id apart by the kind, not by the time.
    const ts = Date.now() - 1000;
    const event = (id: string, kind?: Impression["kind"]) => {
      // Every other viewer is not identified: no userId on the wire.
      const { userId, ...anonymous } = { ...impression(id), ts };
      return { ...(Number(id.split("-")[1]) % 2 === 0 ? { userId } : {}), ...anonymous, ...(kind && { kind }) };
    };
    const sent = (id: string, kind?: Impression["kind"]) => ({ key: id, value: encodeImpression(event(id, kind)) });
    // Per id: its impression, viewable twice (in the same batch), a click, a video's start and complete.
    await produce(
      config,
      ids.flatMap((id) => [
        sent(id),
        sent(id, "viewable"),
        sent(id, "viewable"),
        sent(id, "click"),
        sent(id, "start"),
        sent(id, "complete"),
      ]),
    );
    // A worker that stored the first 100 messages and died before committing: they are replayed.
    const messages = await readAll(config, ids.length * 6);
    const dead = pipelineAs(config, "dead-worker");
    await processBatch([{ topic: config.KAFKA_TOPIC, partition: 0, messages: messages.slice(0, 100) }], dead.deps);
    await startWorker(config, { takeoverAfterMs: 1_000, insertTimeoutMs: 500 });
    await drained(config);
    // Later copies: a second click, viewable and impression of every id.
    await produce(
      config,
      ids.flatMap((id) => [sent(id, "click"), sent(id, "viewable"), sent(id)]),
    );
    await drained(config);
    const result = await db.clickhouse.query({
      query: `SELECT kind, count() AS rows, uniqExact(id) AS distinct, countIf(user_id = '') AS anonymous,
          (SELECT sum(impressions) FROM impressions_per_minute WHERE ad_id = 'kinds' AND kind = i.kind) AS rollup
        FROM impressions AS i WHERE startsWith(id, 'kinds-') GROUP BY kind ORDER BY kind`,
      format: "JSONEachRow",
    });
    const perKind = (await result.json<Record<string, string | number>>()).map((row) => ({
      kind: row.kind,
      rows: Number(row.rows),
      distinct: Number(row.distinct),
      anonymous: Number(row.anonymous),
      rollup: Number(row.rollup),
    }));
    const once = { rows: 40, distinct: 40, anonymous: 20, rollup: 40 };
    expect(perKind).toEqual(
      ["click", "complete", "impression", "start", "viewable"].map((kind) => ({ kind, ...once })),
    );
  });

  it("a worker that died after inserting, before committing: the replay is recognised and not stored again", async () => {
    const config = await scenario({ KAFKA_PARTITIONS: "1" });
    await produce(
      config,
      Array.from({ length: 100 }, (_, i) => record(`crash2-${i}`)),
    );
    const messages = await readAll(config, 100);
    const dead = pipelineAs(config, "dead-worker");
    // Half of the batch stored, as if the process died between two batches; nothing committed.
    await processBatch([{ topic: config.KAFKA_TOPIC, partition: 0, messages: messages.slice(0, 60) }], dead.deps);
    expect(await stored("crash2-")).toMatchObject({ rows: 60 });
    await startWorker(config, { takeoverAfterMs: 1_000, insertTimeoutMs: 500 });
    await drained(config);
    expect(await stored("crash2-")).toEqual({ rows: 100, distinct: 100, rollup: 100 });
  });
});
