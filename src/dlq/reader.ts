import { randomBytes } from "node:crypto";
import { Admin, Consumer, ListOffsetTimestamps, MessagesStreamModes } from "@platformatic/kafka";
import { type Envelope, parseEnvelope } from "./envelope.ts";

/** One message of the dead-letter topic. */
export interface DeadLetter {
  partition: number;
  offset: bigint;
  /** When the worker dead-lettered it (the dead letter's Kafka timestamp). */
  writtenAt: number;
  /** Undefined if its value is not an envelope this app wrote. */
  envelope: Envelope | undefined;
  raw: string;
  headers: Record<string, string>;
}

export interface ReadOptions {
  brokers: string[];
  clientId: string;
  topic: string;
  /** Epoch milliseconds: start each partition at the first dead letter written at or after it. */
  since: number | undefined;
}

export interface DeadLetterSource {
  /** Dead letters in the range read, over all partitions (for progress). */
  total: number;
  letters: AsyncIterable<DeadLetter>;
  close(): Promise<void>;
}

/**
 * Reads the dead-letter topic from `since` (or its start) to the end it had when reading began, and stops there.
 * Reads only: it joins a consumer group of its own that never commits, so no worker's or tool's offsets move.
 */
export async function openDeadLetters(options: ReadOptions): Promise<DeadLetterSource> {
  const consumer = new Consumer({
    clientId: options.clientId,
    groupId: `${options.clientId}-${randomBytes(6).toString("hex")}`,
    bootstrapBrokers: options.brokers,
    autocommit: false,
    maxWaitTime: 200,
  });
  try {
    const topics = [options.topic];
    const admin = new Admin({ clientId: options.clientId, bootstrapBrokers: options.brokers });
    const listed = await admin.listTopics().finally(() => admin.close());
    if (!listed.includes(options.topic)) {
      throw new Error(
        `no topic ${options.topic} at ${options.brokers.join(",")}: no worker has started there yet, or KAFKA_DLQ_TOPIC names another`,
      );
    }
    const ends =
      (await consumer.listOffsets({ topics, timestamp: ListOffsetTimestamps.LATEST })).get(options.topic) ?? [];
    const firsts =
      (
        await consumer.listOffsets({
          topics,
          timestamp: options.since === undefined ? ListOffsetTimestamps.EARLIEST : BigInt(options.since),
        })
      ).get(options.topic) ?? [];
    // A partition with nothing written since `since` answers -1: nothing to read there.
    const starts = ends.map((end, p) => {
      const first = firsts[p] ?? -1n;
      return first < 0n || first > end ? end : first;
    });
    const total = ends.reduce((sum, end, p) => sum + Number(end - (starts[p] ?? end)), 0);
    return { total, letters: read(consumer, options.topic, starts, ends), close: () => consumer.close(true) };
  } catch (error) {
    await consumer.close(true).catch(() => {});
    throw error;
  }
}

async function* read(consumer: Consumer, topic: string, starts: bigint[], ends: bigint[]): AsyncIterable<DeadLetter> {
  const left = new Set(ends.flatMap((end, p) => (end > (starts[p] ?? end) ? [p] : [])));
  if (left.size === 0) return;
  const stream = await consumer.consume({
    topics: [topic],
    mode: MessagesStreamModes.MANUAL,
    offsets: starts.map((offset, partition) => ({ topic, partition, offset })),
    autocommit: false,
  });
  try {
    for await (const message of stream) {
      const end = ends[message.partition] ?? 0n;
      if (message.offset >= end || !left.has(message.partition)) continue;
      const raw = message.value?.toString("utf8") ?? "";
      const headers: Record<string, string> = {};
      for (const [key, value] of message.headers) headers[key.toString()] = value.toString();
      yield {
        partition: message.partition,
        offset: message.offset,
        writtenAt: Number(message.timestamp),
        envelope: parseEnvelope(raw),
        raw,
        headers,
      };
      if (message.offset + 1n >= end) left.delete(message.partition);
      if (left.size === 0) break;
    }
  } finally {
    await stream.close();
  }
}
