import { randomBytes } from "node:crypto";
import { Admin, ListOffsetTimestamps, Producer, stringSerializers } from "@platformatic/kafka";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../stack/process.ts";
import { testConfig } from "../../test/support/config.ts";
import { createImpressionProducer, ImpressionProducer } from "./producer.ts";
import { ensureTopics } from "./topics.ts";

// A broker address where nothing listens: the real client, failing the way it does when Kafka is down.
async function producerToNowhere(maxBufferBytes: number, timeoutMs: number): Promise<ImpressionProducer> {
  const producer = new Producer<string, string | Buffer, string, string>({
    clientId: "producer-test",
    bootstrapBrokers: [`127.0.0.1:${await freePort()}`],
    serializers: { ...stringSerializers, value: (value) => (typeof value === "string" ? Buffer.from(value) : value) },
    idempotent: true,
    retries: 1000,
    retryDelay: 100,
  });
  return new ImpressionProducer({
    producer,
    topic: "nowhere",
    lingerMs: 1,
    maxBatchBytes: 1024,
    maxBufferBytes,
    timeoutMs,
    maxInFlight: 1,
  });
}

const record = { key: "id-1", value: '{"id":"id-1","ts":1,"userId":"u","adId":"a"}' };
let current: ImpressionProducer | undefined;

afterEach(async () => {
  await current?.close().catch(() => {});
});

describe("ImpressionProducer without a reachable broker", () => {
  it("rejects with KAFKA_TIMEOUT once timeoutMs passed, never waiting longer", async () => {
    current = await producerToNowhere(1024 * 1024, 300);
    const started = Date.now();
    await expect(current.send([record])).rejects.toMatchObject({ failure: "KAFKA_TIMEOUT", code: "kafka_unavailable" });
    expect(Date.now() - started).toBeLessThan(800);
  });

  it("refuses at once with PRODUCER_BUFFER_FULL while unacknowledged records fill the buffer", async () => {
    current = await producerToNowhere(200, 2000);
    const pending = current.send([record, record]);
    pending.catch(() => {});
    const started = Date.now();
    await expect(current.send([record, record])).rejects.toMatchObject({
      failure: "PRODUCER_BUFFER_FULL",
      code: "kafka_unavailable",
    });
    expect(Date.now() - started).toBeLessThan(50);
  });

  it("refuses with PRODUCER_CLOSED after close()", async () => {
    const producer = await producerToNowhere(1024, 200);
    await producer.close();
    await expect(producer.send([record])).rejects.toMatchObject({ failure: "PRODUCER_CLOSED", code: "shutting_down" });
  });
});

describe("ImpressionProducer with a broker", () => {
  it("splits a send larger than the broker's 1 MiB batch limit into several produce requests", async () => {
    const topic = `producer-${randomBytes(4).toString("hex")}`;
    // Several produce requests in a row, the first to a just-created topic: room for a slow machine.
    const config = testConfig({ KAFKA_TOPIC: topic, PRODUCE_TIMEOUT_MS: "20000" });
    await ensureTopics(config.KAFKA_BROKERS, "producer-test", [{ name: topic, partitions: 1, replicationFactor: 1 }]);
    current = createImpressionProducer(config);
    // ~4 MB of incompressible values, all on the topic's one partition.
    const records = Array.from({ length: 2_000 }, (_, i) => ({
      key: `big-${i}`,
      value: randomBytes(1_000).toString("hex"),
    }));
    await current.send(records);

    const admin = new Admin({ clientId: "producer-test", bootstrapBrokers: config.KAFKA_BROKERS });
    try {
      const [offsets] = await admin.listOffsets({
        topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp: ListOffsetTimestamps.LATEST }] }],
      });
      expect(offsets?.partitions[0]?.offset).toBe(2_000n);
    } finally {
      await admin.close();
    }
  });
});
