import { type Admin, ListOffsetTimestamps } from "@platformatic/kafka";

/** Where one partition stands for one consumer group. */
export interface PartitionLag {
  partition: number;
  /** Offset the next message written to the partition will get. */
  logEndOffset: bigint;
  /** Offset the group resumes from; undefined while the group has committed nothing for the partition. */
  committedOffset: bigint | undefined;
  /** Messages the group has not committed yet. */
  lag: bigint;
}

export interface ConsumerLag {
  topic: string;
  group: string;
  partitions: PartitionLag[];
  total: bigint;
}

/** Offsets of one topic, by partition. */
export interface TopicOffsets {
  logStart: ReadonlyMap<number, bigint>;
  logEnd: ReadonlyMap<number, bigint>;
  /** Kafka answers -1 for a partition the group never committed. */
  committed: ReadonlyMap<number, bigint>;
}

/** Lag per partition: end − committed, or end − log start where nothing is committed yet (never negative). */
export function computeLag(topic: string, group: string, offsets: TopicOffsets): ConsumerLag {
  const partitions = [...offsets.logEnd.keys()].sort((a, b) => a - b);
  let total = 0n;
  const rows = partitions.map((partition): PartitionLag => {
    const logEndOffset = offsets.logEnd.get(partition) ?? 0n;
    const commit = offsets.committed.get(partition) ?? -1n;
    const committedOffset = commit >= 0n ? commit : undefined;
    const from = committedOffset ?? offsets.logStart.get(partition) ?? 0n;
    const lag = logEndOffset > from ? logEndOffset - from : 0n;
    total += lag;
    return { partition, logEndOffset, committedOffset, lag };
  });
  return { topic, group, partitions: rows, total };
}

/** Asks Kafka for the topic's log start and end offsets and the group's commits, then computes the lag. */
export async function measureConsumerLag(admin: Admin, topic: string, group: string): Promise<ConsumerLag> {
  const metadata = await admin.metadata({ topics: [topic] });
  const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
  const partitionIndexes = Array.from({ length: count }, (_, i) => i);
  const offsetsAt = (timestamp: bigint) =>
    admin
      .listOffsets({
        topics: [{ name: topic, partitions: partitionIndexes.map((p) => ({ partitionIndex: p, timestamp })) }],
      })
      .then((topics) => new Map(topics.flatMap((t) => t.partitions).map((p) => [p.partitionIndex, p.offset])));
  const [logStart, logEnd, groups] = await Promise.all([
    offsetsAt(ListOffsetTimestamps.EARLIEST),
    offsetsAt(ListOffsetTimestamps.LATEST),
    admin.listConsumerGroupOffsets({ groups: [{ groupId: group, topics: [{ name: topic, partitionIndexes }] }] }),
  ]);
  const committed = new Map(
    groups
      .flatMap((g) => g.topics)
      .filter((t) => t.name === topic)
      .flatMap((t) => t.partitions)
      .map((p) => [p.partitionIndex, p.committedOffset]),
  );
  return computeLag(topic, group, { logStart, logEnd, committed });
}
