import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Consumer, MessagesStreamModes, Producer, stringDeserializers, stringSerializers } from "@platformatic/kafka";
import type { Config } from "../../src/config.ts";
import { ensureTopics, impressionTopics } from "../../src/kafka/topics.ts";
import { testConfig } from "./config.ts";

/** Creates a topic and writes one message to each listed partition, in order (`id-<i>` -> `event-<i>`). */
export async function topicWithMessages(brokers: string[], topic: string, partitionOfEach: number[]): Promise<void> {
  const partitions = Math.max(...partitionOfEach) + 1;
  await ensureTopics(brokers, "test-support", [{ name: topic, partitions, replicationFactor: 1 }]);
  const producer = new Producer({
    clientId: "test-support",
    bootstrapBrokers: brokers,
    serializers: stringSerializers,
    // A retried send to a just-created topic must not write the batch twice: tests count exactly.
    idempotent: true,
  });
  await producer.send({
    messages: partitionOfEach.map((partition, i) => ({ topic, partition, key: `id-${i}`, value: `event-${i}` })),
  });
  await producer.close();
}

/**
 * Reads a topic from the start, as a new consumer group, until `enough` says so or `timeoutMs` passed:
 * what a worker would see. Returns the messages read.
 */
export async function readTopic(
  brokers: string[],
  topic: string,
  enough: (seen: { key: string; value: string }[]) => boolean,
  timeoutMs = 10_000,
): Promise<{ key: string; value: string }[]> {
  const consumer = new Consumer({
    groupId: `test-reader-${randomUUID()}`,
    clientId: "test-support",
    bootstrapBrokers: brokers,
    deserializers: stringDeserializers,
    maxWaitTime: 200,
  });
  const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST });
  const seen: { key: string; value: string }[] = [];
  const timer = setTimeout(() => void stream.close(), timeoutMs);
  try {
    for await (const message of stream) {
      seen.push({ key: message.key, value: message.value });
      if (enough(seen)) break;
    }
  } finally {
    clearTimeout(timer);
    await stream.close();
    await consumer.close(true);
  }
  return seen;
}

/**
 * Until `group` has committed every message of `topic` (partitions 0 to `partitions` - 1): each was handled.
 * Throws after `timeoutMs`.
 */
export async function groupDrained(
  brokers: string[],
  group: string,
  topic: string,
  partitions: number,
  timeoutMs = 30_000,
): Promise<void> {
  const probe = new Consumer({ clientId: "test-support-probe", groupId: group, bootstrapBrokers: brokers });
  const all = Array.from({ length: partitions }, (_, p) => p);
  try {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(200)) {
      const [ends, commits] = await Promise.all([
        probe.listOffsets({ topics: [topic] }),
        probe.listCommittedOffsets({ topics: [{ topic, partitions: all }] }),
      ]);
      const behind = all.filter((p) => {
        const end = ends.get(topic)?.[p] ?? 0n;
        return end > 0n && (commits.get(topic)?.[p] ?? -1n) < end;
      });
      if (behind.length === 0) return;
    }
    throw new Error(`group ${group} did not commit everything on ${topic} within ${timeoutMs} ms`);
  } finally {
    await probe.close();
  }
}

/**
 * A worker's config with topics, group and Valkey keys of its own (`<prefix>-<hex>`), storing in `database`, its
 * topics created; batches handed over after 100 ms.
 */
export async function ownTopicsConfig(
  prefix: string,
  database: string,
  overrides: Record<string, string> = {},
): Promise<Config> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  const config = testConfig({
    CLICKHOUSE_DATABASE: database,
    KAFKA_TOPIC: name,
    KAFKA_DLQ_TOPIC: `${name}.dlq`,
    KAFKA_CONSUMER_GROUP: `${name}-group`,
    WORKER_BATCH_MAX_WAIT_MS: "100",
    ...overrides,
  });
  await ensureTopics(config.KAFKA_BROKERS, "test-support", impressionTopics(config));
  return config;
}
