import { randomUUID } from "node:crypto";
import { Admin } from "@platformatic/kafka";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../stack/process.ts";
import { testConfig } from "../../test/support/config.ts";
import { topicWithMessages } from "../../test/support/kafka.ts";
import { createClickHouse } from "../storage/clickhouse.ts";
import { buildApp } from "./app.ts";

const suffix = randomUUID().slice(0, 8);
const topic = `metrics-${suffix}`;
const group = `metrics-group-${suffix}`;
// The query role: /metrics is served whatever the role, and this one needs no producer.
const config = testConfig({ KAFKA_TOPIC: topic, KAFKA_CONSUMER_GROUP: group, API_ROLE: "query" });
const clickhouse = createClickHouse(config);
const admin = new Admin({ clientId: "metrics-test", bootstrapBrokers: config.KAFKA_BROKERS });
let app: FastifyInstance;

beforeAll(async () => {
  await topicWithMessages(config.KAFKA_BROKERS, topic, [0, 0, 0, 1]);
  await admin.alterConsumerGroupOffsets({
    groupId: group,
    topics: [{ name: topic, partitionOffsets: [{ partition: 0, offset: 2n }] }],
  });
  app = await buildApp({ config, clickhouse, checks: {}, logger: false });
});

afterAll(async () => {
  await app?.close();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.close();
  await clickhouse.close();
});

describe("GET /metrics", () => {
  it("answers the configured group's lag on the configured topic in Prometheus text format", async () => {
    const response = await app.inject({ method: "GET", url: "/metrics" });

    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    const labels = `topic="${topic}",group="${group}"`;
    const series = response.body.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
    expect(series).toEqual([
      `impressions_consumer_lag{${labels},partition="0"} 1`,
      `impressions_consumer_lag{${labels},partition="1"} 1`,
      `impressions_consumer_lag_total{${labels}} 2`,
      `impressions_log_end_offset{${labels},partition="0"} 3`,
      `impressions_log_end_offset{${labels},partition="1"} 1`,
      `impressions_committed_offset{${labels},partition="0"} 2`,
    ]);
    expect(response.body).toContain("# TYPE impressions_consumer_lag gauge");
  });

  it("answers 503 kafka_unavailable within about 2 s when Kafka does not answer", async () => {
    const nowhere = testConfig({ KAFKA_BROKERS: `127.0.0.1:${await freePort()}`, API_ROLE: "query" });
    const cut = await buildApp({ config: nowhere, clickhouse, checks: {}, logger: false });
    try {
      const started = Date.now();
      const response = await cut.inject({ method: "GET", url: "/metrics" });

      expect(Date.now() - started).toBeLessThan(2000);
      expect(response.statusCode).toBe(503);
      expect(response.headers["retry-after"]).toBe("1");
      expect(response.json()).toMatchObject({ error: "kafka_unavailable", message: expect.any(String) });
    } finally {
      await cut.close();
    }
  });
});
