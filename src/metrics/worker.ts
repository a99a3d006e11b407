import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Seconds, from a sub-millisecond Valkey script to a ClickHouse insert near its 5 s timeout. */
const STEP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 10, 100, 500, 1000, 2000, 5000, 10_000, 20_000];

/**
 * A worker's metric families. The outcome counters move only when a batch's offsets are committed, one outcome
 * per message, so across the workers consumed = counted + duplicates + dead-lettered (docs/METRICS.md).
 */
export function workerMetrics(registry: Registry) {
  const registers = [registry];
  return {
    consumed: new Counter({
      name: "impressions_consumed_total",
      help: "Messages whose offsets this worker committed (a message read again after a crash counts again).",
      registers,
    }),
    counted: new Counter({
      name: "impressions_counted_total",
      help: "Committed messages whose impression is stored on their behalf (inserted, or a replay already stored).",
      registers,
    }),
    duplicates: new Counter({
      name: "impressions_duplicates_total",
      help: "Committed messages dropped as copies: of an earlier message in the same batch, or claimed in the window.",
      labelNames: ["stage"] as const,
      registers,
    }),
    replayed: new Counter({
      name: "impressions_replayed_total",
      help: "Committed messages read again after a failed batch or a crash; each is also in counted.",
      registers,
    }),
    deadLettered: new Counter({
      name: "impressions_dead_lettered_total",
      help: "Committed messages sent to the dead-letter topic, by reason.",
      labelNames: ["reason"] as const,
      registers,
    }),
    batchEvents: new Histogram({
      name: "worker_batch_events",
      help: "Messages per batch handed to the pipeline.",
      buckets: BATCH_BUCKETS,
      registers,
    }),
    stepDuration: new Histogram({
      name: "worker_step_duration_seconds",
      help: "Time of each pipeline step per batch: decode, claim, lookup, insert, dead-letter, commit.",
      labelNames: ["step"] as const,
      buckets: STEP_BUCKETS,
      registers,
    }),
    lastCommit: new Gauge({
      name: "worker_last_commit_timestamp_seconds",
      help: "When this worker last committed offsets (Unix seconds).",
      registers,
    }),
    starvedRestarts: new Counter({
      name: "worker_starved_restarts_total",
      help: "Times this worker's consumer started over because owned partitions had lag and received nothing.",
      registers,
    }),
    lag: new Gauge({
      name: "impressions_consumer_lag",
      help: "Messages of a partition this worker owns that the group has not committed yet (every 10 s).",
      labelNames: ["topic", "group", "partition"] as const,
      registers,
    }),
  };
}

export type WorkerMetrics = ReturnType<typeof workerMetrics>;

/** worker_stalled: what the worker's GET /healthz says (src/worker/health.ts), judged at each scrape. */
export function stalledGauge(registry: Registry, stalled: () => boolean): Gauge {
  return new Gauge({
    name: "worker_stalled",
    help: "1 while this worker's partitions have lag and it committed nothing for WORKER_STALL_SECONDS, else 0.",
    registers: [registry],
    collect() {
      this.set(stalled() ? 1 : 0);
    },
  });
}

export type PipelineStep = "decode" | "claim" | "lookup" | "insert" | "dead-letter" | "commit";
