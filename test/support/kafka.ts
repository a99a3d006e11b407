import { randomUUID } from "node:crypto";
import { Consumer, MessagesStreamModes, Producer, stringDeserializers, stringSerializers } from "@platformatic/kafka";
import { ensureTopics } from "../../src/kafka/topics.ts";

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
