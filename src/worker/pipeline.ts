import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";
import type { ClaimStore } from "../dedup/claims.ts";
import type { Impression } from "../impression/schema.ts";
import type { BatchOutcome, ConsumedMessage, PartitionBatch } from "../kafka/consumer.ts";
import type { PipelineStep } from "../metrics/worker.ts";
import { findStoredIds, storeImpressions } from "../storage/impressions.ts";
import type { StorageLayout } from "../storage/layout.ts";
import { claimIds } from "./claim-ids.ts";
import { deadLetterPoison } from "./dead-letter-poison.ts";
import type { DeadLetters } from "./dead-letters.ts";
import type { Decoded } from "./decode.ts";
import { decodeBatch } from "./decode-batch.ts";
import { deferBusyPartitions } from "./defer-busy-partitions.ts";
import { flagExpiredClaims } from "./expired-claims.ts";
import { firstSightings } from "./first-sightings.ts";
import { insertBeforeTakeover, lookupBeforeTakeover, type TakeoverDeadline } from "./insert-before-takeover.ts";
import { resolveReplays } from "./resolve-replays.ts";
import { type PartitionTally, tallyBatch } from "./tally.ts";

export interface PipelineDependencies extends Pick<TakeoverDeadline, "takeoverAfterMs" | "insertTimeoutMs"> {
  decode: (message: ConsumedMessage) => Decoded;
  claims: ClaimStore;
  /** DEDUP_WINDOW_SECONDS in milliseconds: how long a claim lives. */
  dedupWindowMs: number;
  /** The wall clock, to compare with Kafka timestamps; Date.now by default. */
  wallClock?: () => number;
  clickhouse: ClickHouseClient;
  /** One server by default. */
  layout?: StorageLayout;
  deadLetters: DeadLetters;
  logger: Logger;
  /** Times each step (for metrics); by default steps just run. */
  timeStep?: <T>(step: PipelineStep, run: () => T) => T;
}

/** The batch's outcome for the consumer, and what became of each settled partition's messages. */
export interface PipelineOutcome extends BatchOutcome {
  tallies: Map<number, PartitionTally>;
}

const untimed = <T>(_step: PipelineStep, run: () => T): T => run();

/** The claims' age is measured on this process's monotonic clock: no clock sync with Valkey or other workers. */
const now = () => performance.now();

/**
 * decode -> drop in-batch copies -> claim in Valkey -> defer busy partitions -> distrust `new` for messages older
 * than a claim lives -> ask ClickHouse about replays and those -> insert before the claims can be taken over ->
 * dead-letter the poison. Resolves once everything committable is stored; the consumer then commits.
 */
export async function processBatch(batch: PartitionBatch[], deps: PipelineDependencies): Promise<PipelineOutcome> {
  const { clickhouse, layout, takeoverAfterMs, insertTimeoutMs } = deps;
  const time = deps.timeStep ?? untimed;
  const { decoded, kept, dropped } = time("decode", () => {
    const decoded = decodeBatch(batch, deps.decode);
    return { decoded, ...firstSightings(decoded.sightings) };
  });
  const { claimedAt, claimed } = await time("claim", () => claimIds(kept, deps.claims, now));
  const { deferred, settled, poison } = deferBusyPartitions(claimed, decoded.poison);
  // Read after the claims were answered: an outcome cannot be older than the clock it is judged by.
  const checked = flagExpiredClaims(settled, { now: (deps.wallClock ?? Date.now)(), windowMs: deps.dedupWindowMs });
  const deadline = { claimedAt, now, takeoverAfterMs, insertTimeoutMs };
  // Bounded like the insert (a lookup on a connection whose packets are dropped fails the batch, which is
  // retried), and by the time the insert may still wait to start.
  const lookup = (events: readonly Impression[]) =>
    lookupBeforeTakeover(
      (timeoutMs) => findStoredIds(clickhouse, events, { layout, timeoutMs: Math.min(timeoutMs, insertTimeoutMs) }),
      deadline,
    );
  const resolved = await time("lookup", () => resolveReplays(checked, lookup));
  await time("insert", () =>
    insertBeforeTakeover(
      resolved.rows,
      (rows, options) => storeImpressions(clickhouse, rows, options, layout),
      deadline,
    ),
  );
  await time("dead-letter", () => deadLetterPoison(poison, deps.deadLetters, deps.logger));

  deps.logger.debug(
    {
      messages: decoded.sightings.length + decoded.poison.length,
      inserted: resolved.rows.length,
      inBatchDuplicates: dropped,
      duplicates: resolved.duplicates,
      replays: resolved.replays,
      expiredClaims: resolved.expired,
      alreadyStored: resolved.alreadyStored,
      lookupReadRows: resolved.lookupReadRows,
      poison: poison.length,
      deferredPartitions: deferred,
    },
    "batch stored",
  );
  const tallies = tallyBatch({
    batch,
    sightings: decoded.sightings,
    kept,
    settled: checked,
    stored: resolved.stored,
    poison,
    deferred,
  });
  return { deferred, tallies };
}
