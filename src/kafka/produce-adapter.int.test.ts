import { randomBytes } from "node:crypto";
import { ProduceAcks, Producer } from "@platformatic/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/support/config.ts";
import { readTopic } from "../../test/support/kafka.ts";
import { connectionTo, PRODUCE_VERSION, produceOn, produceVersion } from "./produce-adapter.ts";
import { encodeRecordBatch } from "./record-batch.ts";
import { ensureTopics } from "./topics.ts";

/**
 * The contract of src/kafka/produce-adapter.ts with @platformatic/kafka's internals, against a real broker: what
 * kGetApi and kGetConnection return, and the refused partitions' answers (ResponseError.response). Each failure
 * names the hook.
 */
const HOOKS = "src/kafka/produce-adapter.ts relies on";
const config = testConfig();
const topic = `adapter-${randomBytes(4).toString("hex")}`;
let client: Producer;

beforeAll(async () => {
  await ensureTopics(config.KAFKA_BROKERS, "adapter-test", [{ name: topic, partitions: 2, replicationFactor: 1 }]);
  client = new Producer({ clientId: "adapter-test", bootstrapBrokers: config.KAFKA_BROKERS, retries: 0 });
});

afterAll(async () => {
  await client.close(true);
});

/** The leader of the topic's partitions (one broker here) and an open connection to it. */
async function leaderConnection() {
  const metadata = await client.metadata({ topics: [topic] });
  const leader = metadata.topics.get(topic)?.partitions[0]?.leader ?? -1;
  const broker = metadata.brokers.get(leader);
  expect(broker, "the test topic's leader is in the metadata").toBeDefined();
  return connectionTo(client, broker as NonNullable<typeof broker>);
}

const batchOf = (...ids: string[]) =>
  encodeRecordBatch(
    ids.map((id) => Buffer.from(id)),
    ids.map((id) => Buffer.from(`{"id":"${id}"}`)),
    BigInt(Date.now()),
    "lz4",
  );

describe("the produce adapter against a broker", () => {
  it("kGetApi: answers the Produce version the library would use, v11 or later with Kafka 4", async () => {
    const version = await produceVersion(client);
    expect(
      typeof version,
      `${HOOKS} Producer#[kGetApi]("Produce", cb) calling back with an API that has .version`,
    ).toBe("number");
    expect(version).toBeGreaterThanOrEqual(PRODUCE_VERSION);
  });

  it("kGetConnection: a connection a Produce v11 request is sent on, its records written and answered", async () => {
    const connection = await leaderConnection();
    const response = await produceOn(connection, ProduceAcks.ALL, 10_000, topic, [[0, batchOf("a-1", "a-2")]]);
    expect(
      response.responses[0]?.partitionResponses[0],
      `${HOOKS} Producer#[kGetConnection](broker, cb) and createAPI(...).async answering the parsed response`,
    ).toMatchObject({ index: 0, errorCode: 0, baseOffset: 0n });
    const read = await readTopic(config.KAFKA_BROKERS, topic, (seen) => seen.length >= 2);
    expect(read).toEqual([
      { key: "a-1", value: '{"id":"a-1"}' },
      { key: "a-2", value: '{"id":"a-2"}' },
    ]);
  });

  it("ResponseError.response: a request with a refused partition answers each partition, written or refused", async () => {
    const connection = await leaderConnection();
    // Partition 7 does not exist: the broker refuses it (UNKNOWN_TOPIC_OR_PARTITION) and writes partition 1.
    const response = await produceOn(connection, ProduceAcks.ALL, 10_000, topic, [
      [1, batchOf("b-1")],
      [7, batchOf("b-2")],
    ]);
    const answers = response.responses.flatMap((r) => r.partitionResponses);
    expect(
      answers.map(({ index, errorCode }) => ({ index, errorCode })).sort((a, b) => a.index - b.index),
      `${HOOKS} ResponseError.response: the library's parser throws on a refused partition, with the whole answer`,
    ).toEqual([
      { index: 1, errorCode: 0 },
      { index: 7, errorCode: 3 },
    ]);
  });
});
