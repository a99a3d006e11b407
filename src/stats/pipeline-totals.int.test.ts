import { randomUUID } from "node:crypto";
import { Admin, Producer, stringSerializers } from "@platformatic/kafka";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertImpressions, useTestDatabase } from "../../test/support/clickhouse.ts";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { buildApp } from "../api/app.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";

// GET /stats/pipeline against real Kafka and ClickHouse: what was written to the topics, committed by the
// group and stored in the raw table, read back exactly.

const suffix = randomUUID().slice(0, 8);
const config = testConfig({
  API_ROLE: "query",
  ...ownTopics("pipeline"),
  KAFKA_CONSUMER_GROUP: `pipeline-group-${suffix}`,
  KAFKA_PARTITIONS: "2",
});
const db = useTestDatabase(() => config);
let app: FastifyInstance;
let producer: Producer<string, string, string, string>;
let admin: Admin;

beforeAll(async () => {
  await ensureTopics(config.KAFKA_BROKERS, "pipeline-test", impressionTopics(config));
  producer = new Producer({
    clientId: "pipeline-test",
    bootstrapBrokers: config.KAFKA_BROKERS,
    serializers: stringSerializers,
    idempotent: true,
  });
  admin = new Admin({ clientId: "pipeline-test", bootstrapBrokers: config.KAFKA_BROKERS });
  app = await buildApp({ config: db.config, clickhouse: db.clickhouse, checks: {}, logger: false });
});
afterAll(async () => {
  await app?.close();
  await producer?.close();
  await admin?.close();
});

async function pipeline() {
  const response = await app.inject({ url: "/stats/pipeline" });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

async function write(topic: string, partitionOfEach: number[]) {
  await producer.send({
    messages: partitionOfEach.map((partition, i) => ({ topic, partition, key: `k-${i}`, value: `v-${i}` })),
  });
}

describe("GET /stats/pipeline", () => {
  it("answers zeros and no freshness before anything was written", async () => {
    expect(await pipeline()).toMatchObject({
      received: 0,
      counted: 0,
      deadLetters: 0,
      lag: 0,
      duplicates: 0,
      newestEventTime: null,
      freshnessMs: null,
    });
  });

  it("reads received and dead letters from the topics, lag from the group, counted and newest from ClickHouse", async () => {
    // 7 events on the topic (4 on partition 0, 3 on 1), 2 dead letters, the group committed all but 1.
    await write(config.KAFKA_TOPIC, [0, 0, 0, 0, 1, 1, 1]);
    await write(config.KAFKA_DLQ_TOPIC, [0, 1]);
    await admin.alterConsumerGroupOffsets({
      groupId: config.KAFKA_CONSUMER_GROUP,
      topics: [
        {
          name: config.KAFKA_TOPIC,
          partitionOffsets: [
            { partition: 0, offset: 4n },
            { partition: 1, offset: 2n },
          ],
        },
      ],
    });
    // 3 stored: of the 6 committed, 2 were dead letters and 1 a copy the worker dropped.
    const newest = Date.now() - 2500;
    const rows = [newest - 60_000, newest, newest - 1000].map((ts) => makeImpression(suffix, { ts }));
    await insertImpressions(db.clickhouse, rows);

    const before = Date.now();
    const answer = await pipeline();
    const after = Date.now();
    expect(answer).toMatchObject({
      received: 7,
      counted: 3,
      deadLetters: 2,
      lag: 1,
      duplicates: 1,
      newestEventTime: new Date(newest).toISOString(),
    });
    const measuredAt = Date.parse(answer.measuredAt);
    expect(measuredAt).toBeGreaterThanOrEqual(before);
    expect(measuredAt).toBeLessThanOrEqual(after);
    expect(answer.freshnessMs).toBe(measuredAt - newest);
  });

  it("follows the topic as it grows: lag and received rise together, duplicates stay", async () => {
    await write(config.KAFKA_TOPIC, [1, 1, 0]);
    expect(await pipeline()).toMatchObject({ received: 10, lag: 4, counted: 3, deadLetters: 2, duplicates: 1 });
  });
});
