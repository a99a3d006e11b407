import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Producer, stringSerializers } from "@platformatic/kafka";
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import { ClaimStore } from "../dedup/claims.ts";
import { createValkey } from "../dedup/valkey.ts";
import { BatchConsumer } from "../kafka/consumer.ts";
import { createClickHouse } from "../storage/clickhouse.ts";
import { DeadLetters } from "./dead-letters.ts";
import { createDecoder } from "./decode.ts";
import { processBatch } from "./pipeline.ts";

export interface WorkerTimings {
  /** A dead worker's claims are taken over after this. */
  takeoverAfterMs: number;
  /** Longest insert; with takeoverAfterMs it bounds how late a live worker may insert after claiming. */
  insertTimeoutMs: number;
}

export const DEFAULT_TIMINGS: WorkerTimings = { takeoverAfterMs: 15_000, insertTimeoutMs: 5_000 };

export interface Worker {
  start(): Promise<void>;
  /** Finishes the batch in hand, commits, leaves the group, closes the connections. */
  stop(): Promise<void>;
}

/** Wires one worker: a consumer whose batches go through the pipeline, with its own connections. */
export function createWorker(config: Config, logger: Logger, timings: WorkerTimings = DEFAULT_TIMINGS): Worker {
  const owner = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  const clickhouse = createClickHouse(config);
  // Fail fast while Valkey is away: the consumer retries the whole batch with backoff.
  const valkey = createValkey(config);
  valkey.on("error", (error) => logger.debug({ err: error }, "valkey connection error"));
  const dlqProducer = new Producer({
    clientId: `${config.KAFKA_CLIENT_ID}-worker-dlq`,
    bootstrapBrokers: config.KAFKA_BROKERS,
    serializers: stringSerializers,
  });
  const deps = {
    decode: createDecoder({ maxFutureSkewMs: config.MAX_FUTURE_SKEW_MS, retentionDays: config.RETENTION_DAYS }),
    claims: new ClaimStore(valkey, {
      keyPrefix: `seen:${config.KAFKA_TOPIC}:`,
      windowSeconds: config.DEDUP_WINDOW_SECONDS,
      owner,
      takeoverAfterMs: timings.takeoverAfterMs,
    }),
    clickhouse,
    deadLetters: new DeadLetters(dlqProducer, config.KAFKA_DLQ_TOPIC),
    logger,
    ...timings,
  };
  const consumer = new BatchConsumer({
    brokers: config.KAFKA_BROKERS,
    clientId: `${config.KAFKA_CLIENT_ID}-worker`,
    groupId: config.KAFKA_CONSUMER_GROUP,
    topic: config.KAFKA_TOPIC,
    maxBatchEvents: config.WORKER_BATCH_MAX_EVENTS,
    maxWaitMs: config.WORKER_BATCH_MAX_WAIT_MS,
    handle: (batch) => processBatch(batch, deps),
    logger,
  });
  return {
    start: async () => {
      await consumer.start();
      logger.info({ owner, group: config.KAFKA_CONSUMER_GROUP, topic: config.KAFKA_TOPIC }, "worker started");
    },
    stop: async () => {
      await consumer.stop();
      await Promise.allSettled([dlqProducer.close(), clickhouse.close(), valkey.quit()]);
    },
  };
}
