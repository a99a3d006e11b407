import { randomUUID } from "node:crypto";
import { Admin } from "@platformatic/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/support/config.ts";
import { topicWithMessages } from "../../test/support/kafka.ts";
import { measureConsumerLag } from "./lag.ts";

const suffix = randomUUID().slice(0, 8);
const topic = `lag-${suffix}`;
const group = `lag-group-${suffix}`;
const config = testConfig();
const admin = new Admin({ clientId: "lag-test", bootstrapBrokers: config.KAFKA_BROKERS });

beforeAll(async () => {
  // Partition 0 gets offsets 0-2, partition 1 offsets 0-1.
  await topicWithMessages(config.KAFKA_BROKERS, topic, [0, 0, 0, 1, 1]);
});

afterAll(async () => {
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.close();
});

describe("measureConsumerLag", () => {
  it("counts every message as lag for a group that committed nothing", async () => {
    const lag = await measureConsumerLag(admin, topic, `never-${suffix}`);
    expect(lag.partitions).toEqual([
      { partition: 0, logEndOffset: 3n, committedOffset: undefined, lag: 3n },
      { partition: 1, logEndOffset: 2n, committedOffset: undefined, lag: 2n },
    ]);
    expect(lag.total).toBe(5n);
  });

  it("counts from the commit where there is one, and from the log start where there is none", async () => {
    await admin.alterConsumerGroupOffsets({
      groupId: group,
      topics: [{ name: topic, partitionOffsets: [{ partition: 0, offset: 1n }] }],
    });
    // Retention removed partition 1's first message: it can no longer be consumed, so it is no lag.
    await admin.deleteRecords({ topics: [{ name: topic, partitions: [{ partition: 1, offset: 1n }] }] });

    const lag = await measureConsumerLag(admin, topic, group);

    expect(lag).toEqual({
      topic,
      group,
      partitions: [
        { partition: 0, logEndOffset: 3n, committedOffset: 1n, lag: 2n },
        { partition: 1, logEndOffset: 2n, committedOffset: undefined, lag: 1n },
      ],
      total: 3n,
    });
  });
});
