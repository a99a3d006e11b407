import { Producer, stringSerializers } from "@platformatic/kafka";
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import { ClaimStore } from "../dedup/claims.ts";
import { slotIdentity } from "../dedup/owner.ts";
import { OwnerLease } from "../dedup/owner-lease.ts";
import { createValkey } from "../dedup/valkey.ts";
import { BatchConsumer, type PartitionBatch } from "../kafka/consumer.ts";
import type { ConsumerLag } from "../kafka/lag.ts";
import type { PipelineStep, WorkerMetrics } from "../metrics/worker.ts";
import { createClickHouse } from "../storage/clickhouse.ts";
import { storageLayout } from "../storage/layout.ts";
import { DeadLetters } from "./dead-letters.ts";
import { createDecoder } from "./decode.ts";
import type { ConsumerProgress } from "./health.ts";
import { processBatch } from "./pipeline.ts";
import type { PartitionTally } from "./tally.ts";

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
export function createWorker(
  config: Config,
  logger: Logger,
  timings: WorkerTimings = DEFAULT_TIMINGS,
  metrics?: WorkerMetrics,
  /** Told of each commit and lag measurement, for the worker's /healthz. */
  progress?: ConsumerProgress,
  /**
   * Another process has this slot's name now (this one stalled past the lease); its claim outcomes are refused
   * from then on. The process's composition root decides what to do (the worker process stops itself).
   */
  onLeaseLost: () => void = () => logger.error("lost this worker slot's name to another process"),
): Worker {
  const identity = slotIdentity(config);
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
    dedupWindowMs: config.DEDUP_WINDOW_SECONDS * 1000,
    clickhouse,
    layout: storageLayout(config),
    deadLetters: new DeadLetters(dlqProducer, config.KAFKA_DLQ_TOPIC),
    logger,
    ...timings,
    timeStep: metrics && timedSteps(metrics),
  };
  /** What became of the messages of the batch in hand, counted once its offsets are committed. */
  let tallies = new Map<number, PartitionTally>();
  /** The consumer, once the claims' owner is leased; the slot's own name also makes it Kafka's static member. */
  const consumerFor = (lease: OwnerLease) => {
    const claims = new ClaimStore(valkey, {
      keyPrefix: `seen:${config.KAFKA_TOPIC}:`,
      windowSeconds: config.DEDUP_WINDOW_SECONDS,
      owner: lease,
      takeoverAfterMs: timings.takeoverAfterMs,
    });
    return new BatchConsumer({
      brokers: config.KAFKA_BROKERS,
      clientId: `${config.KAFKA_CLIENT_ID}-worker`,
      groupId: config.KAFKA_CONSUMER_GROUP,
      groupInstanceId: lease.stable ? lease.name : undefined,
      topic: config.KAFKA_TOPIC,
      maxBatchEvents: config.WORKER_BATCH_MAX_EVENTS,
      maxWaitMs: config.WORKER_BATCH_MAX_WAIT_MS,
      handle: async (batch) => {
        metrics?.batchEvents.observe(batch.reduce((n, b) => n + b.messages.length, 0));
        const outcome = await processBatch(batch, { ...deps, claims });
        // Its inserts are answered: a successor of this slot need not wait for one.
        lease.settled();
        tallies = outcome.tallies;
        return outcome;
      },
      onCommitted: (stored, seconds) => {
        progress?.committed();
        if (metrics) countCommitted(metrics, stored, tallies, seconds);
      },
      onLag: (lag) => {
        progress?.measuredLag(lag.total);
        if (metrics) showLag(metrics, lag);
      },
      onStarved: () => metrics?.starvedRestarts.inc(),
      logger,
    });
  };
  let running: { lease: OwnerLease; consumer: BatchConsumer } | undefined;
  return {
    start: async () => {
      const lease = await OwnerLease.acquire(valkey, {
        keyPrefix: `worker:${config.KAFKA_TOPIC}:`,
        identity,
        ttlMs: timings.takeoverAfterMs,
        insertTimeoutMs: timings.insertTimeoutMs,
        onLost: onLeaseLost,
        logger,
      });
      const consumer = consumerFor(lease);
      running = { lease, consumer };
      await consumer.start();
      logger.info(
        { owner: lease.name, group: config.KAFKA_CONSUMER_GROUP, topic: config.KAFKA_TOPIC },
        "worker started",
      );
    },
    stop: async () => {
      await running?.consumer.stop();
      await running?.lease.release().catch(() => {});
      await Promise.allSettled([dlqProducer.close(), clickhouse.close(), valkey.quit()]);
    },
  };
}

/** Times each pipeline step into worker_step_duration_seconds, sync and async steps alike. */
function timedSteps(metrics: WorkerMetrics) {
  return <T>(step: PipelineStep, run: () => T): T => {
    const stop = metrics.stepDuration.startTimer({ step });
    const result = run();
    if (result instanceof Promise) return result.finally(stop) as T;
    stop();
    return result;
  };
}

/** The committed partitions' outcomes: only committed messages count, so a replayed batch is never counted twice. */
function countCommitted(
  metrics: WorkerMetrics,
  stored: readonly PartitionBatch[],
  tallies: Map<number, PartitionTally>,
  seconds: number,
): void {
  metrics.stepDuration.observe({ step: "commit" }, seconds);
  metrics.lastCommit.set(Date.now() / 1000);
  for (const { partition } of stored) {
    const tally = tallies.get(partition);
    if (!tally) continue;
    metrics.consumed.inc(tally.consumed);
    metrics.counted.inc(tally.counted);
    metrics.replayed.inc(tally.replayed);
    metrics.duplicates.inc({ stage: "batch" }, tally.duplicatesInBatch);
    metrics.duplicates.inc({ stage: "window" }, tally.duplicatesInWindow);
    for (const [reason, n] of Object.entries(tally.deadLettered)) metrics.deadLettered.inc({ reason }, n ?? 0);
  }
}

function showLag(metrics: WorkerMetrics, { topic, group, partitions }: ConsumerLag): void {
  metrics.lag.reset();
  for (const p of partitions) metrics.lag.set({ topic, group, partition: String(p.partition) }, Number(p.lag));
}
