import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.ts";
import { describeDifference, impressionTopics, type TopicSpec, topicDifferences } from "./topics.ts";

const spec: TopicSpec = { name: "impressions", partitions: 16, replicationFactor: 3, minInsyncReplicas: 2 };

describe("impressionTopics", () => {
  it("gives both topics min.insync.replicas 2 with three replicas, and none below three unless set", () => {
    const replicated = impressionTopics(loadConfig({ KAFKA_REPLICATION_FACTOR: "3" }));
    expect(replicated.map((t) => [t.name, t.replicationFactor, t.minInsyncReplicas])).toEqual([
      ["impressions", 3, 2],
      ["impressions.dlq", 3, 2],
    ]);
    expect(impressionTopics(loadConfig({}))[0]).not.toHaveProperty("minInsyncReplicas");
    const set = impressionTopics(loadConfig({ KAFKA_REPLICATION_FACTOR: "2", KAFKA_MIN_INSYNC_REPLICAS: "2" }));
    expect(set[1]?.minInsyncReplicas).toBe(2);
  });
});

describe("topicDifferences", () => {
  it("finds none for a topic as configured", () => {
    expect(topicDifferences(spec, { partitions: 16, replicas: Array(16).fill(3), minInsyncReplicas: 2 })).toEqual([]);
  });

  it("names each setting that differs, with the actual and the configured value", () => {
    expect(topicDifferences(spec, { partitions: 4, replicas: [1, 1, 1, 1], minInsyncReplicas: 1 })).toEqual([
      { topic: "impressions", setting: "partitions", actual: 4, configured: 16 },
      { topic: "impressions", setting: "replication.factor", actual: 1, configured: 3 },
      { topic: "impressions", setting: "min.insync.replicas", actual: 1, configured: 2 },
    ]);
  });

  it("reads partitions with different replica counts as a range", () => {
    const [difference] = topicDifferences(spec, {
      partitions: 16,
      replicas: [3, 2, ...Array(14).fill(3)],
      minInsyncReplicas: 2,
    });
    expect(difference).toEqual({ topic: "impressions", setting: "replication.factor", actual: "2-3", configured: 3 });
  });

  it("leaves min.insync.replicas alone when the spec does not set it", () => {
    const unset = { name: "t", partitions: 1, replicationFactor: 1 };
    expect(topicDifferences(unset, { partitions: 1, replicas: [1], minInsyncReplicas: 2 })).toEqual([]);
  });
});

describe("describeDifference", () => {
  it("says which topic, which setting, what it has, what is configured, and that nothing was changed", () => {
    const line = describeDifference({ topic: "impressions", setting: "partitions", actual: 4, configured: 16 });
    expect(line).toBe(
      "topic impressions has partitions 4, but 16 is configured; left unchanged (change the topic or the configuration to match)",
    );
  });
});
