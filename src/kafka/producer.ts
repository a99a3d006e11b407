import { setTimeout as sleep } from "node:timers/promises";
import { type MessageToProduce, ProduceAcks, type Producer, stringSerializers } from "@platformatic/kafka";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { keyPartitioner } from "./partitioner.ts";
import { OneBufferBatchProducer } from "./record-batch.ts";

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

type StringMessage = MessageToProduce<string, string | Buffer, string, string>;

interface Batch {
  messages: StringMessage[];
  bytes: number;
  acked: PromiseWithResolvers<void>;
  deadline: NodeJS.Timeout;
}

export interface ImpressionProducerOptions {
  producer: Producer<string, string | Buffer, string, string>;
  topic: string;
  /** When no produce request is outstanding, how long the first record waits for others to join it. */
  lingerMs: number;
  /** Most record bytes in one produce request: a record that would go past it starts the next one. */
  maxBatchBytes: number;
  /** Bytes of records not yet settled by Kafka (acked or failed) allowed before new ones are refused. */
  maxBufferBytes: number;
  /** Longest a caller waits for the broker's ack. */
  timeoutMs: number;
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

/**
 * Writes keyed records to one topic; send() resolves only once the broker acknowledged them (acks=all).
 * At most `maxInFlight` produce requests are outstanding; records arriving while all are out gather into
 * the next batch, so batches grow with load and throughput comes from batching, never from answering
 * before the ack.
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
    const topic = this.#options.topic;
    const acks = new Set<Promise<void>>();
    for (const record of records) {
      const size = record.key.length + record.value.length + RECORD_OVERHEAD_BYTES;
      const batch = this.#batchWithRoom(size);
      batch.messages.push({ topic, key: record.key, value: record.value });
      batch.bytes += size;
      acks.add(batch.acked.promise);
    }
    if (this.#inFlight.size < this.#options.maxInFlight && this.#lingerTimer === undefined) {
      this.#lingerTimer = setTimeout(() => this.#sendQueued(), this.#options.lingerMs);
    }
    // A large send spans several batches: it is acknowledged when all of them are.
    return acks.size === 1 ? ([...acks][0] as Promise<void>) : Promise.all(acks).then(() => {});
  }

  /** Bytes of records handed over and not yet settled by Kafka. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** A metadata round trip to the brokers, for readiness; fails if the topic is missing. */
  async ping(): Promise<void> {
    await this.#options.producer.metadata({ topics: [this.#options.topic], forceUpdate: true, retries: 0 });
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
    await this.#options.producer.close(true);
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
    const batch: Batch = { messages: [], bytes: 0, acked, deadline };
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
    // In the set before send(): the client may call back synchronously.
    const settled = Promise.withResolvers<void>();
    this.#inFlight.add(settled.promise);
    const sentAt = performance.now();
    // acks on every send: for a producer that is not idempotent the client's default is the leader's ack alone.
    this.#options.producer.send({ messages: batch.messages, acks: ProduceAcks.ALL }, (error) => {
      clearTimeout(batch.deadline);
      this.#options.observeProduce?.((performance.now() - sentAt) / 1000);
      this.#bufferedBytes -= batch.bytes;
      if (error) {
        batch.acked.reject(
          new ProducerUnavailableError("KAFKA_UNAVAILABLE", `Kafka did not accept the write: ${error.message}`, {
            cause: error,
          }),
        );
      } else {
        batch.acked.resolve();
      }
      this.#inFlight.delete(settled.promise);
      settled.resolve();
      this.#sendQueued();
    });
  }
}

/**
 * Share of PRODUCE_TIMEOUT_MS spent waiting for the broker's ack; the rest is the most a batch request
 * waits for admission, so every answer, 503 included, comes within PRODUCE_TIMEOUT_MS.
 */
export const ACK_SHARE_OF_PRODUCE_TIMEOUT = 0.5;

/**
 * The producer the API runs with: idempotent, acks=all, a few retries. The caller's wait is bounded by
 * `timeoutMs` whatever the client is still retrying.
 */
export function createImpressionProducer(
  config: Config,
  observeProduce?: ImpressionProducerOptions["observeProduce"],
): ImpressionProducer {
  const producer = new OneBufferBatchProducer<string, string | Buffer, string, string>({
    clientId: `${config.KAFKA_CLIENT_ID}-api`,
    bootstrapBrokers: config.KAFKA_BROKERS,
    // Values the API encodes are bytes already; text is sent as UTF-8.
    serializers: { ...stringSerializers, value: (value) => (typeof value === "string" ? Buffer.from(value) : value) },
    partitioner: keyPartitioner,
    idempotent: true,
    // Measured (docs/BENCHMARKS.md): lz4 costs the producer less CPU per message than no compression.
    compression: "lz4",
    timeout: config.PRODUCE_TIMEOUT_MS,
    connectTimeout: config.PRODUCE_TIMEOUT_MS,
    requestTimeout: config.PRODUCE_TIMEOUT_MS,
    // Past the timeout the sender already has its 503: retrying longer would only hold memory.
    retries: 3,
    retryDelay: Math.max(50, Math.floor(config.PRODUCE_TIMEOUT_MS / 8)),
  });
  return new ImpressionProducer({
    producer,
    topic: config.KAFKA_TOPIC,
    lingerMs: config.PRODUCER_LINGER_MS,
    maxBatchBytes: DEFAULT_MAX_BATCH_BYTES,
    maxBufferBytes: config.PRODUCER_MAX_BUFFER_BYTES,
    timeoutMs: Math.round(config.PRODUCE_TIMEOUT_MS * ACK_SHARE_OF_PRODUCE_TIMEOUT),
    // The idempotent producer allows one produce request in flight per connection. More (not idempotent) were
    // measured no faster here: /event and /events are bound by the API's CPU (docs/BENCHMARKS.md).
    maxInFlight: 1,
    observeProduce,
  });
}
