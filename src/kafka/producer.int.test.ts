import { randomBytes } from "node:crypto";
import { type AddressInfo, createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Admin, ListOffsetTimestamps, Producer } from "@platformatic/kafka";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../stack/process.ts";
import { testConfig } from "../../test/support/config.ts";
import { keyPartitioner } from "./partitioner.ts";
import { createImpressionProducer, ImpressionProducer } from "./producer.ts";
import { ensureTopics } from "./topics.ts";

/** A producer of the real client to `address`: nothing listening, a server that never answers, or a broker. */
function producerTo(address: string, maxBufferBytes: number, timeoutMs: number, topic = "nowhere"): ImpressionProducer {
  const client = new Producer({ clientId: "producer-test", bootstrapBrokers: [address], retries: 0 });
  return new ImpressionProducer({
    client,
    topic,
    compression: "lz4",
    lingerMs: 1,
    maxBatchBytes: 1024,
    maxBufferBytes,
    timeoutMs,
    brokerTimeoutMs: timeoutMs,
    retries: 1000,
    retryDelayMs: 100,
    maxInFlight: 1,
  });
}
// A broker address where nothing listens: the real client, failing the way it does when Kafka is down.
const producerToNowhere = async (maxBufferBytes: number, timeoutMs: number) =>
  producerTo(`127.0.0.1:${await freePort()}`, maxBufferBytes, timeoutMs);

const record = { key: "id-1", value: '{"id":"id-1","ts":1,"userId":"u","adId":"a"}' };
let current: ImpressionProducer | undefined;

afterEach(async () => {
  await current?.close().catch(() => {});
});

describe("ImpressionProducer without a reachable broker", () => {
  it("rejects with KAFKA_UNAVAILABLE and the cause once retrying cannot succeed within timeoutMs", async () => {
    current = await producerToNowhere(1024 * 1024, 300);
    const started = Date.now();
    await expect(current.send([record])).rejects.toMatchObject({
      failure: "KAFKA_UNAVAILABLE",
      code: "kafka_unavailable",
    });
    // KAFKA_UNAVAILABLE, not KAFKA_TIMEOUT: it gave up before the 300 ms were over; the clock only checks it did
    // not wait much past them (302 ms was seen beside the suite on 2 busy cores).
    expect(Date.now() - started).toBeLessThan(600);
  });

  it("rejects with KAFKA_TIMEOUT once timeoutMs passed when the broker never answers, never waiting longer", async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      current = producerTo(`127.0.0.1:${(silent.address() as AddressInfo).port}`, 1024 * 1024, 300);
      const started = Date.now();
      await expect(current.send([record])).rejects.toMatchObject({
        failure: "KAFKA_TIMEOUT",
        code: "kafka_unavailable",
      });
      expect(Date.now() - started).toBeLessThan(800);
    } finally {
      silent.close();
    }
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
  it("puts each record on the partition its key hashes to, as the library's partitioner does, once", async () => {
    const topic = `producer-${randomBytes(4).toString("hex")}`;
    const config = testConfig({ KAFKA_TOPIC: topic, PRODUCE_TIMEOUT_MS: "20000" });
    await ensureTopics(config.KAFKA_BROKERS, "producer-test", [{ name: topic, partitions: 4, replicationFactor: 1 }]);
    current = createImpressionProducer(config);
    const records = Array.from({ length: 400 }, (_, i) => ({ key: `key-${i}`, value: `{"n":${i}}` }));
    await Promise.all([current.send(records.slice(0, 150)), current.send(records.slice(150))]);

    const expected = [0, 0, 0, 0];
    for (const { key } of records) {
      const partition = keyPartitioner(undefined, Buffer.from(key)) % 4;
      expected[partition] = (expected[partition] ?? 0) + 1;
    }
    const admin = new Admin({ clientId: "producer-test", bootstrapBrokers: config.KAFKA_BROKERS });
    try {
      const [offsets] = await admin.listOffsets({
        topics: [
          {
            name: topic,
            partitions: [0, 1, 2, 3].map((partitionIndex) => ({
              partitionIndex,
              timestamp: ListOffsetTimestamps.LATEST,
            })),
          },
        ],
      });
      const written = [0, 1, 2, 3].map((p) =>
        Number(offsets?.partitions.find((o) => o.partitionIndex === p)?.offset ?? -1n),
      );
      expect(written).toEqual(expected);
    } finally {
      await admin.close();
    }
  });

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

describe("ImpressionProducer when the broker cannot take the write", () => {
  /** How many records partition 0 of `topic` holds. */
  async function written(brokers: string[], topic: string): Promise<bigint | undefined> {
    const admin = new Admin({ clientId: "producer-test", bootstrapBrokers: brokers });
    try {
      const [offsets] = await admin.listOffsets({
        topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp: ListOffsetTimestamps.LATEST }] }],
      });
      return offsets?.partitions[0]?.offset;
    } finally {
      await admin.close();
    }
  }

  it("sends a batch again while its topic is missing, and acknowledges it once the topic exists and has it", async () => {
    const topic = `producer-${randomBytes(4).toString("hex")}`;
    const brokers = testConfig().KAFKA_BROKERS;
    current = producerTo(brokers[0] as string, 1024 * 1024, 20_000, topic);
    const settled = current.send([record, { ...record, key: "id-2" }]).then(() => "acknowledged");
    settled.catch(() => {});
    // No partition to write to: tried again every 100 ms, never acknowledged.
    expect(await Promise.race([settled, sleep(1_000).then(() => "waiting")])).toBe("waiting");
    await ensureTopics(brokers, "producer-test", [{ name: topic, partitions: 1, replicationFactor: 1 }]);
    await expect(settled).resolves.toBe("acknowledged");
    expect(await written(brokers, topic)).toBe(2n);
  });

  it("rejects a batch refused for good (too large for the topic) at once with KAFKA_UNAVAILABLE and the reason", async () => {
    const topic = `producer-${randomBytes(4).toString("hex")}`;
    const brokers = testConfig().KAFKA_BROKERS;
    const admin = new Admin({ clientId: "producer-test", bootstrapBrokers: brokers });
    try {
      await admin.createTopics({
        topics: [topic],
        partitions: 1,
        replicas: 1,
        configs: [{ name: "max.message.bytes", value: "200" }],
      });
    } finally {
      await admin.close();
    }
    current = producerTo(brokers[0] as string, 1024 * 1024, 20_000, topic);
    const started = performance.now();
    await expect(current.send([{ key: "big", value: randomBytes(2_000).toString("hex") }])).rejects.toMatchObject({
      failure: "KAFKA_UNAVAILABLE",
      message: expect.stringContaining("MESSAGE_TOO_LARGE"),
    });
    // Not retried: 1,000 retries 100 ms apart would have taken the whole 20 s.
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(await written(brokers, topic)).toBe(0n);
  });
});
