import { Admin, ConfigResourceTypes, GenericError, MultipleErrors } from "@platformatic/kafka";
import { type Config, minInsyncReplicas } from "../config.ts";

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  /** The topic's min.insync.replicas; unset: the brokers' default. */
  minInsyncReplicas?: number;
}

/** What an existing topic has, as the brokers describe it. */
export interface TopicState {
  partitions: number;
  /** Replicas of each partition. */
  replicas: number[];
  minInsyncReplicas: number | undefined;
}

/** A setting in which an existing topic differs from its spec. */
export interface TopicDifference {
  topic: string;
  setting: "partitions" | "replication.factor" | "min.insync.replicas";
  /** Replicas differing between partitions read as a range: "2-3". */
  actual: number | string;
  configured: number;
}

/** The impressions topic and its dead-letter topic, as configured. */
export function impressionTopics(config: Config): TopicSpec[] {
  const minIsr = minInsyncReplicas(config);
  const spec = {
    partitions: config.KAFKA_PARTITIONS,
    replicationFactor: config.KAFKA_REPLICATION_FACTOR,
    ...(minIsr !== undefined && { minInsyncReplicas: minIsr }),
  };
  return [
    { name: config.KAFKA_TOPIC, ...spec },
    { name: config.KAFKA_DLQ_TOPIC, ...spec },
  ];
}

/**
 * Creates the topics that do not exist yet; an existing topic is never changed, its differences from the spec
 * are returned for the caller to report. Safe to run from every process at start: a topic created concurrently
 * by another process counts as created.
 */
export async function ensureTopics(
  brokers: string[],
  clientId: string,
  topics: TopicSpec[],
): Promise<TopicDifference[]> {
  const admin = new Admin({ clientId: `${clientId}-admin`, bootstrapBrokers: brokers });
  try {
    const listed = new Set(await admin.listTopics());
    for (const topic of topics.filter((t) => !listed.has(t.name))) await createTopic(admin, topic);
    const existing = topics.filter((t) => listed.has(t.name));
    if (existing.length === 0) return [];
    const states = await describeTopics(
      admin,
      existing.map((t) => t.name),
    );
    return existing.flatMap((topic) => {
      const state = states.get(topic.name);
      return state ? topicDifferences(topic, state) : [];
    });
  } finally {
    await admin.close();
  }
}

/** Every setting in which `actual` differs from `spec`; min.insync.replicas only where both say. */
export function topicDifferences(spec: TopicSpec, actual: TopicState): TopicDifference[] {
  const differences: TopicDifference[] = [];
  const differ = (setting: TopicDifference["setting"], value: number | string, configured: number) => {
    differences.push({ topic: spec.name, setting, actual: value, configured });
  };
  if (actual.partitions !== spec.partitions) differ("partitions", actual.partitions, spec.partitions);
  if (actual.replicas.some((count) => count !== spec.replicationFactor)) {
    const fewest = Math.min(...actual.replicas);
    const most = Math.max(...actual.replicas);
    differ("replication.factor", fewest === most ? fewest : `${fewest}-${most}`, spec.replicationFactor);
  }
  const minIsr = actual.minInsyncReplicas;
  if (spec.minInsyncReplicas !== undefined && minIsr !== undefined && minIsr !== spec.minInsyncReplicas) {
    differ("min.insync.replicas", minIsr, spec.minInsyncReplicas);
  }
  return differences;
}

/** One line for the log: the topic, the setting, what it has and what is configured. */
export function describeDifference(difference: TopicDifference): string {
  return (
    `topic ${difference.topic} has ${difference.setting} ${difference.actual}, but ${difference.configured} is ` +
    "configured; left unchanged (change the topic or the configuration to match)"
  );
}

async function createTopic(admin: Admin, topic: TopicSpec): Promise<void> {
  try {
    await admin.createTopics({
      topics: [topic.name],
      partitions: topic.partitions,
      replicas: topic.replicationFactor,
      ...(topic.minInsyncReplicas !== undefined && {
        configs: [{ name: "min.insync.replicas", value: String(topic.minInsyncReplicas) }],
      }),
    });
  } catch (error) {
    if (!isTopicAlreadyExists(error)) throw error;
  }
}

async function describeTopics(admin: Admin, names: string[]): Promise<Map<string, TopicState>> {
  const metadata = await admin.metadata({ topics: names, forceUpdate: true });
  const configs = await admin.describeConfigs({
    resources: names.map((name) => ({
      resourceType: ConfigResourceTypes.TOPIC,
      resourceName: name,
      configurationKeys: ["min.insync.replicas"],
    })),
  });
  const minIsr = new Map(
    configs.map((c) => [c.resourceName, c.configs.find((entry) => entry.name === "min.insync.replicas")?.value]),
  );
  const states = new Map<string, TopicState>();
  for (const name of names) {
    const topic = metadata.topics.get(name);
    if (!topic) continue;
    const value = minIsr.get(name);
    states.set(name, {
      partitions: topic.partitionsCount,
      replicas: topic.partitions.map((partition) => partition.replicas.length),
      minInsyncReplicas: value == null ? undefined : Number(value),
    });
  }
  return states;
}

function isTopicAlreadyExists(error: unknown): boolean {
  if (error instanceof MultipleErrors) return error.findBy("apiId", "TOPIC_ALREADY_EXISTS") !== null;
  if (error instanceof GenericError) return error.findBy("apiId", "TOPIC_ALREADY_EXISTS") !== null;
  return false;
}
