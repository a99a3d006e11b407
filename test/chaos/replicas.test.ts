import type { ClusterMetadata, ClusterPartitionMetadata } from "@platformatic/kafka";
import { describe, expect, it } from "vitest";
import { fullyInSync, leaderOfMostPartitions, partitionsLedBy } from "./replicas.ts";

const brokers = new Map([1, 2, 3].map((id) => [id, { host: "127.0.0.1", port: 9000 + id, rack: null }]));

function metadata(topics: Record<string, Partial<ClusterPartitionMetadata>[]>): ClusterMetadata {
  return {
    id: "cluster",
    brokers,
    controllerId: 1,
    lastUpdate: 0,
    topics: new Map(
      Object.entries(topics).map(([name, partitions]) => [
        name,
        {
          id: name,
          partitionsCount: partitions.length,
          lastUpdate: 0,
          partitions: partitions.map((p) => ({
            leader: 1,
            leaderEpoch: 0,
            replicas: [1, 2, 3],
            isr: [1, 2, 3],
            offlineReplicas: [],
            ...p,
          })),
        },
      ]),
    ),
  };
}

describe("leaderOfMostPartitions", () => {
  it("names the broker that leads most partitions of the topic, with its address", () => {
    const m = metadata({ impressions: [{ leader: 2 }, { leader: 3 }, { leader: 2 }, { leader: 1 }] });
    expect(leaderOfMostPartitions(m, "impressions")).toEqual({ id: 2, broker: "127.0.0.1:9002", partitions: 2 });
  });

  it("takes the smaller id on a tie and ignores partitions without a leader", () => {
    const m = metadata({ impressions: [{ leader: 3 }, { leader: -1 }, { leader: -1 }, { leader: 2 }] });
    expect(leaderOfMostPartitions(m, "impressions").id).toBe(2);
  });

  it("fails when no partition has a leader", () => {
    expect(() => leaderOfMostPartitions(metadata({ impressions: [{ leader: -1 }] }), "impressions")).toThrow(
      "no partition of impressions has a known leader",
    );
  });
});

describe("partitionsLedBy", () => {
  it("counts the partitions of the topic one broker leads", () => {
    const m = metadata({ impressions: [{ leader: 2 }, { leader: 3 }, { leader: 2 }], other: [{ leader: 2 }] });
    expect([1, 2, 3].map((id) => partitionsLedBy(m, "impressions", id))).toEqual([0, 2, 1]);
  });
});

describe("fullyInSync", () => {
  it("holds when every replica of every partition is in the ISR", () => {
    expect(fullyInSync(metadata({ a: [{}, {}], b: [{ isr: [3, 1, 2] }] }), ["a", "b"])).toBe(true);
  });

  it("fails while one replica of one partition is out of the ISR", () => {
    expect(fullyInSync(metadata({ a: [{}, { isr: [1, 3] }], b: [{}] }), ["a", "b"])).toBe(false);
  });

  it("fails for a topic the metadata does not have", () => {
    expect(fullyInSync(metadata({ a: [{}] }), ["a", "b"])).toBe(false);
  });
});
