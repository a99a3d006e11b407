import { Admin, GenericError, MultipleErrors } from "@platformatic/kafka";
import type { Config } from "../config.ts";

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
}

/** The impressions topic and its dead-letter topic, as configured. */
export function impressionTopics(config: Config): TopicSpec[] {
  const spec = { partitions: config.KAFKA_PARTITIONS, replicationFactor: config.KAFKA_REPLICATION_FACTOR };
  return [
    { name: config.KAFKA_TOPIC, ...spec },
    { name: config.KAFKA_DLQ_TOPIC, ...spec },
  ];
}

/**
 * Creates the topics that do not exist yet; existing topics are left as they are. Safe to run from every
 * process at start: a topic created concurrently by another process counts as created.
 */
export async function ensureTopics(brokers: string[], clientId: string, topics: TopicSpec[]): Promise<void> {
  const admin = new Admin({ clientId: `${clientId}-admin`, bootstrapBrokers: brokers });
  try {
    const existing = new Set(await admin.listTopics());
    for (const topic of topics) {
      if (existing.has(topic.name)) continue;
      try {
        await admin.createTopics({
          topics: [topic.name],
          partitions: topic.partitions,
          replicas: topic.replicationFactor,
        });
      } catch (error) {
        if (!isTopicAlreadyExists(error)) throw error;
      }
    }
  } finally {
    await admin.close();
  }
}

function isTopicAlreadyExists(error: unknown): boolean {
  if (error instanceof MultipleErrors) return error.findBy("apiId", "TOPIC_ALREADY_EXISTS") !== null;
  if (error instanceof GenericError) return error.findBy("apiId", "TOPIC_ALREADY_EXISTS") !== null;
  return false;
}
