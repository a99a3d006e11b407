import { Producer, stringSerializers } from "@platformatic/kafka";
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
