import { randomUUID } from "node:crypto";
import { Admin } from "@platformatic/kafka";
import { afterAll, describe, expect, it } from "vitest";
import { startApi } from "../../test/support/api-process.ts";
import { testConfig } from "../../test/support/config.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";

const topic = `topic-report-${randomUUID().slice(0, 8)}`;
const config = testConfig({ KAFKA_TOPIC: topic, KAFKA_DLQ_TOPIC: `${topic}.dlq`, KAFKA_PARTITIONS: "2" });
const admin = new Admin({ clientId: "topic-report-test", bootstrapBrokers: config.KAFKA_BROKERS });
afterAll(() => admin.close());

describe("an api process started against an existing topic that differs from its configuration", () => {
  it("logs each difference as a warning naming the topic, the setting, actual and configured, and changes nothing", async () => {
    await ensureTopics(config.KAFKA_BROKERS, "topic-report-test", impressionTopics(config));
    const api = await startApi(config, { KAFKA_PARTITIONS: "4", API_ROLE: "ingest", AUTH: "off" });
    try {
      const warnings = api
        .output()
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as { level: number; msg: string; setting?: string; topic?: string });
      const reported = warnings.filter((w) => w.level === 40 && w.setting === "partitions");
      expect(reported.map((w) => w.topic).sort()).toEqual([topic, `${topic}.dlq`]);
      expect(reported[0]?.msg).toMatch(/has partitions 2, but 4 is configured; left unchanged/);
      const metadata = await admin.metadata({ topics: [topic, `${topic}.dlq`], forceUpdate: true });
      expect([...metadata.topics.values()].map((t) => t.partitionsCount)).toEqual([2, 2]);
    } finally {
      api.kill();
    }
  });
});
