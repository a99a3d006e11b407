import { type Admin, type ClusterMetadata, ConfigResourceTypes } from "@platformatic/kafka";
import { waitFor } from "../support/wait.ts";

/** A broker as the cluster's metadata names it, and how many partitions of a topic it leads. */
export interface PartitionLeader {
  id: number;
  /** host:port, as in KAFKA_BROKERS. */
  broker: string;
  partitions: number;
}

/** The broker leading most partitions of `topic` (ties: the smaller id); fails if no partition has a leader. */
export function leaderOfMostPartitions(metadata: ClusterMetadata, topic: string): PartitionLeader {
  const led = new Map<number, number>();
  for (const partition of metadata.topics.get(topic)?.partitions ?? []) {
    if (partition.leader >= 0) led.set(partition.leader, (led.get(partition.leader) ?? 0) + 1);
  }
  const [id, partitions] = [...led].sort(([a, countA], [b, countB]) => countB - countA || a - b)[0] ?? [];
  const broker = id === undefined ? undefined : metadata.brokers.get(id);
  if (id === undefined || partitions === undefined || !broker) {
    throw new Error(`no partition of ${topic} has a known leader`);
  }
  return { id, broker: `${broker.host}:${broker.port}`, partitions };
}

/** How many partitions of `topic` the broker `id` leads. */
export function partitionsLedBy(metadata: ClusterMetadata, topic: string, id: number): number {
  return (metadata.topics.get(topic)?.partitions ?? []).filter((p) => p.leader === id).length;
}

/** Every partition of every topic has all its replicas in sync. */
export function fullyInSync(metadata: ClusterMetadata, topics: string[]): boolean {
  return topics.every((name) => {
    const partitions = metadata.topics.get(name)?.partitions ?? [];
    return (
      partitions.length > 0 &&
      partitions.every((p) => p.replicas.length > 0 && p.replicas.every((r) => p.isr.includes(r)))
    );
  });
}

/** Until every partition of `topics` has all its replicas in sync; a broker down meanwhile is polled again. */
export async function waitUntilInSync(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  await waitFor(
    `every replica of ${topics.join(", ")} back in sync`,
    timeoutMs,
    () =>
      admin.metadata({ topics, forceUpdate: true }).then(
        (metadata) => fullyInSync(metadata, topics) || undefined,
        () => undefined,
      ),
    250,
  );
}

/** A topic's setting as the brokers apply it (the topic's own value, else the broker's default). */
export async function topicConfig(admin: Admin, topic: string, name: string): Promise<string | undefined> {
  const [described] = await admin.describeConfigs({
    resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: [name] }],
  });
  return described?.configs.find((c) => c.name === name)?.value ?? undefined;
}
