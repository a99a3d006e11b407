import { dedupKey } from "../impression/fields.ts";
import type { PartitionBatch } from "../kafka/consumer.ts";
import type { PoisonMessage } from "./dead-letters.ts";
import type { PoisonCode } from "./decode.ts";
import type { Sighting } from "./decode-batch.ts";
import type { CheckedSighting } from "./expired-claims.ts";

/**
 * What became of one partition's messages in a batch. Every message is exactly one of counted (its impression is
 * stored on its behalf: inserted now, or a replay found already stored), a duplicate (an earlier copy in the same
 * batch, or one claimed within the window) or dead-lettered: consumed = counted + duplicates + dead-lettered.
 * `replayed` (messages read again after a failure or a crash, or found stored after their claim expired) is a part
 * of `counted`, not a separate outcome.
 */
export interface PartitionTally {
  consumed: number;
  counted: number;
  replayed: number;
  duplicatesInBatch: number;
  duplicatesInWindow: number;
  deadLettered: Partial<Record<PoisonCode, number>>;
}

const empty = (): PartitionTally => ({
  consumed: 0,
  counted: 0,
  replayed: 0,
  duplicatesInBatch: 0,
  duplicatesInWindow: 0,
  deadLettered: {},
});

/** The tally of each partition the batch settled; deferred partitions have none (nothing of them is committed). */
export function tallyBatch(parts: {
  batch: readonly PartitionBatch[];
  sightings: readonly Sighting[];
  kept: readonly Sighting[];
  settled: readonly CheckedSighting[];
  /** Ids of replays and expired claims that ClickHouse already held. */
  stored: ReadonlySet<string>;
  poison: readonly PoisonMessage[];
  deferred: readonly number[];
}): Map<number, PartitionTally> {
  const tallies = new Map<number, PartitionTally>();
  const of = (partition: number) => {
    const tally = tallies.get(partition) ?? empty();
    tallies.set(partition, tally);
    return tally;
  };
  const deferred = new Set(parts.deferred);
  for (const b of parts.batch) if (!deferred.has(b.partition)) of(b.partition).consumed += b.messages.length;
  const kept = new Set(parts.kept);
  for (const s of parts.sightings) {
    if (!kept.has(s) && !deferred.has(s.position.partition)) of(s.position.partition).duplicatesInBatch++;
  }
  for (const s of parts.settled) {
    const tally = of(s.position.partition);
    if (s.outcome === "duplicate") tally.duplicatesInWindow++;
    else tally.counted++;
    if (s.outcome === "replay" || (s.outcome === "expired" && parts.stored.has(dedupKey(s.event)))) tally.replayed++;
  }
  for (const p of parts.poison) {
    const letters = of(p.position.partition).deadLettered;
    letters[p.code] = (letters[p.code] ?? 0) + 1;
  }
  return tallies;
}
