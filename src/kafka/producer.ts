import { setTimeout as sleep } from "node:timers/promises";
import {
  type Broker,
  type ClusterMetadata,
  type CompressionAlgorithmValue,
  ProduceAcks,
  Producer,
} from "@platformatic/kafka";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { keyPartitioner } from "./partitioner.ts";
import {
  connectionTo,
  type PartitionRecordBatch,
  PRODUCE_VERSION,
  produceOn,
  produceVersion,
  type Refusal,
  refusalOf,
} from "./produce-adapter.ts";
import { encodeRecordBatch } from "./record-batch.ts";

export interface KeyedRecord {
  key: string;
  /** The value's bytes, or its text (sent as UTF-8). */
  value: string | Buffer;
}

export type ProducerFailure = "KAFKA_TIMEOUT" | "KAFKA_UNAVAILABLE" | "PRODUCER_BUFFER_FULL" | "PRODUCER_CLOSED";

/** The write was not acknowledged by Kafka (it may still land later): the sender should retry. */
export class ProducerUnavailableError extends AppError {
  override name = "ProducerUnavailableError";
  /** What exactly went wrong, for logs and tests; the code is what the sender sees. */
  readonly failure: ProducerFailure;
  constructor(failure: ProducerFailure, message: string, options?: ErrorOptions) {
    super(failure === "PRODUCER_CLOSED" ? "shutting_down" : "kafka_unavailable", message, options);
    this.failure = failure;
  }
}

/** Records gathered for one produce request: keys and values side by side, no object per record. */
interface Batch {
  keys: string[];
  values: Buffer[];
  bytes: number;
  acked: PromiseWithResolvers<void>;
  deadline: NodeJS.Timeout;
}

export interface ImpressionProducerOptions {
  /** The Kafka client whose metadata and connections the producer uses; it never sends through it. */
  client: Producer;
  topic: string;
  compression: CompressionAlgorithmValue;
  /** When no produce request is outstanding, how long the first record waits for others to join it. */
  lingerMs: number;
  /** Most record bytes in one produce request: a record that would go past it starts the next one. */
  maxBatchBytes: number;
  /** Bytes of records not yet settled by Kafka (acked or failed) allowed before new ones are refused. */
  maxBufferBytes: number;
  /** Longest a caller waits for the broker's ack. */
  timeoutMs: number;
  /** How long the broker may wait for the in-sync replicas (the produce request's timeout_ms). */
  brokerTimeoutMs: number;
  /** Sends of a produce request's failed partitions again after a retriable error, each after retryDelayMs. */
  retries: number;
  retryDelayMs: number;
  /** Produce requests outstanding at once; records arriving while all are out gather into the next batch. */
  maxInFlight: number;
  /** Called as each produce request settles (acked or failed), with the seconds since it was sent. */
  observeProduce?: (seconds: number) => void;
}

/** Record framing in a Kafka batch (lengths, offsets, timestamps) counted on top of key and value. */
const RECORD_OVERHEAD_BYTES = 24;
/**
 * The most one produce request carries (a larger send() is split): under the broker's default 1 MiB limit
 * on a partition's record batch even if every key hashed to one partition.
 */
const DEFAULT_MAX_BATCH_BYTES = 512 * 1024;

/** What one try at a batch left: the partitions still to write and why, or nothing when all were written. */
interface Attempt {
  pending: PartitionRecordBatch[] | undefined;
  failure?: Error;
  retriable?: boolean;
}

/** The brokers cannot take the produce requests this producer writes: retrying will not help. */
class ProduceVersionError extends Error {}

/**
 * Writes keyed records to one topic; send() resolves only once the broker acknowledged them (acks=all).
 * At most `maxInFlight` produce requests are outstanding; records arriving while all are out gather into
 * the next batch, so batches grow with load and throughput comes from batching, never from answering
 * before the ack. It builds the record batches and the produce requests itself, from the records' keys and
 * values, and uses the client for metadata and connections only: the client's own send made a message
 * object, two Maps and a key buffer per record and kept them until the ack (docs/BENCHMARKS-ARCHIVE.md). Not
 * idempotent: a request sent again after a lost answer may write its records twice, which the workers drop
 * as duplicates like any other copy (docs/DESIGN.md, "The producer").
 */
export class ImpressionProducer {
  readonly #options: ImpressionProducerOptions;
  /** Batches waiting to be sent, oldest first; the last one takes new records. */
  readonly #queue: Batch[] = [];
  #lingerTimer: NodeJS.Timeout | undefined;
  /** Produce requests sent and not yet settled by the broker. */
  readonly #inFlight = new Set<Promise<void>>();
  #bufferedBytes = 0;
  #closed = false;
  /** Resolves once the brokers are known to speak Produce v11. */
  #apiChecked: Promise<void> | undefined;

  constructor(options: ImpressionProducerOptions) {
    this.#options = options;
  }

  send(records: readonly KeyedRecord[]): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new ProducerUnavailableError("PRODUCER_CLOSED", "the server is shutting down"));
    }
    let bytes = 0;
    for (const record of records) bytes += record.key.length + record.value.length + RECORD_OVERHEAD_BYTES;
    if (this.#bufferedBytes + bytes > this.#options.maxBufferBytes) {
      return Promise.reject(
        new ProducerUnavailableError(
          "PRODUCER_BUFFER_FULL",
          "too many events are waiting for Kafka's acknowledgement; retry shortly",
        ),
      );
    }
    this.#bufferedBytes += bytes;
    let first: Promise<void> | undefined;
    let more: Set<Promise<void>> | undefined;
    for (const record of records) {
      const size = record.key.length + record.value.length + RECORD_OVERHEAD_BYTES;
      const batch = this.#batchWithRoom(size);
      batch.keys.push(record.key);
      batch.values.push(typeof record.value === "string" ? Buffer.from(record.value) : record.value);
      batch.bytes += size;
      const acked = batch.acked.promise;
      if (first === undefined) first = acked;
      else if (acked !== first) {
        more ??= new Set([first]);
        more.add(acked);
      }
    }
    if (this.#inFlight.size < this.#options.maxInFlight && this.#lingerTimer === undefined) {
      this.#lingerTimer = setTimeout(() => this.#sendQueued(), this.#options.lingerMs);
    }
    // A large send spans several batches: it is acknowledged when all of them are.
    if (more) return Promise.all(more).then(() => {});
    return first ?? Promise.resolve();
  }

  /** Bytes of records handed over and not yet settled by Kafka. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** A metadata round trip to the brokers, for readiness; fails if the topic is missing. */
  async ping(): Promise<void> {
    await this.#options.client.metadata({ topics: [this.#options.topic], forceUpdate: true, retries: 0 });
  }

  /**
   * Refuses new records, sends every gathered batch and waits for their outcome, then disconnects. The wait
   * is bounded by timeoutMs: past it, every caller already has its answer and retries would only delay exit.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#sendQueued();
    const drained = (async () => {
      while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    })();
    await Promise.race([drained, sleep(this.#options.timeoutMs)]);
    await this.#options.client.close(true);
  }

  /** The last queued batch if `bytes` more still fit (an empty batch takes any record), else a new one. */
  #batchWithRoom(bytes: number): Batch {
    const last = this.#queue.at(-1);
    if (last && (last.bytes === 0 || last.bytes + bytes <= this.#options.maxBatchBytes)) return last;
    const acked = Promise.withResolvers<void>();
    const deadline = setTimeout(() => {
      acked.reject(
        new ProducerUnavailableError(
          "KAFKA_TIMEOUT",
          `Kafka did not acknowledge the write within ${this.#options.timeoutMs} ms; retry shortly`,
        ),
      );
    }, this.#options.timeoutMs);
    const batch: Batch = { keys: [], values: [], bytes: 0, acked, deadline };
    this.#queue.push(batch);
    return batch;
  }

  /** Sends queued batches, oldest first, while fewer than maxInFlight requests are outstanding. */
  #sendQueued(): void {
    clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    while (this.#inFlight.size < this.#options.maxInFlight) {
      const batch = this.#queue.shift();
      if (!batch) return;
      this.#produce(batch);
    }
  }

  #produce(batch: Batch): void {
    const sentAt = performance.now();
    const settled = this.#write(batch).then(
      () => batch.acked.resolve(),
      (error: Error) =>
        batch.acked.reject(
          new ProducerUnavailableError("KAFKA_UNAVAILABLE", `Kafka did not accept the write: ${error.message}`, {
            cause: error,
          }),
        ),
    );
    const done = settled.then(() => {
      clearTimeout(batch.deadline);
      this.#options.observeProduce?.((performance.now() - sentAt) / 1000);
      this.#bufferedBytes -= batch.bytes;
      this.#inFlight.delete(done);
      this.#sendQueued();
    });
    this.#inFlight.add(done);
  }

  /**
   * The batch's records as one record batch per partition, sent to each partition's leader; what failed with a
   * retriable error (no metadata, a new leader, too few in-sync replicas, a lost connection) is sent again with
   * fresh metadata, up to `retries` times and only while its senders still wait. Resolves once every partition
   * is written.
   */
  async #write(batch: Batch): Promise<void> {
    const giveUpAt = performance.now() + this.#options.timeoutMs;
    let pending: PartitionRecordBatch[] | undefined;
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.#attempt(batch, pending, attempt > 0);
      if (outcome.failure === undefined) return;
      pending = outcome.pending;
      const last =
        !outcome.retriable ||
        attempt >= this.#options.retries ||
        performance.now() + this.#options.retryDelayMs >= giveUpAt;
      if (last) throw outcome.failure;
      await sleep(this.#options.retryDelayMs);
    }
  }

  /** One try at writing `pending` (the whole batch when undefined): what is still unwritten after it, and why. */
  async #attempt(batch: Batch, pending: PartitionRecordBatch[] | undefined, refresh: boolean): Promise<Attempt> {
    try {
      this.#apiChecked ??= this.#checkApi();
      await this.#apiChecked;
      const metadata = await this.#options.client.metadata({ topics: [this.#options.topic], forceUpdate: refresh });
      const batches = pending ?? this.#encode(batch, metadata);
      const refused = await this.#sendToLeaders(batches, metadata);
      if (refused.size === 0) return { pending: [] };
      const refusals = [...refused.values()];
      return {
        pending: batches.filter(([partition]) => refused.has(partition)),
        failure: new Error([...new Set(refusals.map((refusal) => refusal.reason))].join("; ")),
        retriable: refusals.every((refusal) => refusal.retriable),
      };
    } catch (error) {
      return { pending, failure: error as Error, retriable: !(error instanceof ProduceVersionError) };
    }
  }

  /** The brokers must speak Produce v11, the only version this producer writes. */
  async #checkApi(): Promise<void> {
    const version = await produceVersion(this.#options.client).catch((error: unknown) => {
      this.#apiChecked = undefined;
      throw error;
    });
    if (version < PRODUCE_VERSION) {
      throw new ProduceVersionError(
        `the brokers speak Produce v${version} at most; this API writes v${PRODUCE_VERSION} (Kafka 4 speaks it)`,
      );
    }
  }

  /** Each partition's record batch, the partition picked from the key as the library's partitioner picks it. */
  #encode(batch: Batch, metadata: ClusterMetadata): PartitionRecordBatch[] {
    const count = metadata.topics.get(this.#options.topic)?.partitionsCount ?? 0;
    if (count === 0) throw new Error(`topic ${this.#options.topic} has no partitions in the metadata`);
    const byPartition = new Map<number, { keys: Buffer[]; values: Buffer[] }>();
    for (let i = 0; i < batch.keys.length; i++) {
      const key = Buffer.from(batch.keys[i] as string);
      const partition = keyPartitioner(undefined, key) % count;
      let records = byPartition.get(partition);
      if (records === undefined) {
        records = { keys: [], values: [] };
        byPartition.set(partition, records);
      }
      records.keys.push(key);
      records.values.push(batch.values[i] as Buffer);
    }
    // The records live on in the encoded batches only.
    batch.keys = [];
    batch.values = [];
    const timestamp = BigInt(Date.now());
    return [...byPartition].map(
      ([partition, { keys, values }]): PartitionRecordBatch => [
        partition,
        encodeRecordBatch(keys, values, timestamp, this.#options.compression),
      ],
    );
  }

  /** One produce request per leader; the partitions that were not written, and why. */
  async #sendToLeaders(batches: PartitionRecordBatch[], metadata: ClusterMetadata): Promise<Map<number, Refusal>> {
    const { client, topic } = this.#options;
    const partitions = metadata.topics.get(topic)?.partitions ?? [];
    const byLeader = new Map<number, PartitionRecordBatch[]>();
    const refused = new Map<number, Refusal>();
    for (const entry of batches) {
      const leader = partitions[entry[0]]?.leader ?? -1;
      if (leader < 0 || !metadata.brokers.has(leader)) {
        refused.set(entry[0], { retriable: true, reason: `partition ${entry[0]} has no leader` });
        continue;
      }
      const ofLeader = byLeader.get(leader);
      if (ofLeader) ofLeader.push(entry);
      else byLeader.set(leader, [entry]);
    }
    await Promise.all(
      [...byLeader].map(async ([leader, ofLeader]) => {
        try {
          const connection = await connectionTo(client, metadata.brokers.get(leader) as Broker);
          const response = await produceOn(connection, ProduceAcks.ALL, this.#options.brokerTimeoutMs, topic, ofLeader);
          for (const answer of response.responses.flatMap((r) => r.partitionResponses)) {
            if (answer.errorCode !== 0) refused.set(answer.index, refusalOf(answer.errorCode, answer.errorMessage));
          }
        } catch (error) {
          // No answer (a lost connection, a timeout): these partitions may or may not be written; sending
          // them again may write copies, which the workers drop.
          for (const [partition] of ofLeader)
            refused.set(partition, { retriable: true, reason: (error as Error).message });
        }
      }),
    );
    return refused;
  }
}

/**
 * Share of PRODUCE_TIMEOUT_MS spent waiting for the broker's ack; the rest is the most a batch request
 * waits for admission, so every answer, 503 included, comes within PRODUCE_TIMEOUT_MS.
 */
export const ACK_SHARE_OF_PRODUCE_TIMEOUT = 0.5;

/**
 * The producer the API runs with: acks=all, a few retries, not idempotent (docs/DESIGN.md, "The producer"). The
 * caller's wait is bounded by `timeoutMs` whatever is still being retried.
 */
export function createImpressionProducer(
  config: Config,
  observeProduce?: ImpressionProducerOptions["observeProduce"],
): ImpressionProducer {
  const client = new Producer({
    clientId: `${config.KAFKA_CLIENT_ID}-api`,
    bootstrapBrokers: config.KAFKA_BROKERS,
    connectTimeout: config.PRODUCE_TIMEOUT_MS,
    requestTimeout: config.PRODUCE_TIMEOUT_MS,
    retries: 0,
  });
  return new ImpressionProducer({
    client,
    topic: config.KAFKA_TOPIC,
    // Measured (docs/BENCHMARKS-ARCHIVE.md): lz4 costs the producer less CPU per message than no compression.
    compression: "lz4",
    lingerMs: config.PRODUCER_LINGER_MS,
    maxBatchBytes: DEFAULT_MAX_BATCH_BYTES,
    maxBufferBytes: config.PRODUCER_MAX_BUFFER_BYTES,
    timeoutMs: Math.round(config.PRODUCE_TIMEOUT_MS * ACK_SHARE_OF_PRODUCE_TIMEOUT),
    brokerTimeoutMs: config.PRODUCE_TIMEOUT_MS,
    // Past the timeout the sender already has its 503: retrying longer would only hold memory.
    retries: 3,
    retryDelayMs: Math.max(50, Math.floor(config.PRODUCE_TIMEOUT_MS / 8)),
    // More requests in flight were measured no faster here: /event and /events are bound by the API's CPU
    // (docs/BENCHMARKS-ARCHIVE.md); one keeps a partition's batches in order.
    maxInFlight: 1,
    observeProduce,
  });
}
