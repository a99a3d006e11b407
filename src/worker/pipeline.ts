import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";
import type { ClaimStore, Position } from "../dedup/claims.ts";
import type { Impression } from "../impression/schema.ts";
import type { BatchOutcome, ConsumedMessage, PartitionBatch } from "../kafka/consumer.ts";
import { findStoredIds, storeImpressions } from "../storage/impressions.ts";
import type { DeadLetters, PoisonMessage } from "./dead-letters.ts";
import type { Decoded } from "./decode.ts";
import { firstSightings } from "./first-sightings.ts";

export interface PipelineDependencies {
  decode: (message: ConsumedMessage) => Decoded;
  claims: ClaimStore;
  clickhouse: ClickHouseClient;
  deadLetters: DeadLetters;
  logger: Logger;
  /** Must match the claim store's takeover time: past it, another worker may take the claims over. */
  takeoverAfterMs: number;
  /** Longest an insert may take; an insert is only started if it ends before the claims can be taken over. */
  insertTimeoutMs: number;
}

/** The claims of this batch became too old to insert safely: the batch is retried and claims them again. */
export class ClaimsExpiredError extends Error {
  override name = "ClaimsExpiredError";
  readonly code = "CLAIMS_EXPIRED";
}

interface Sighting {
  event: Impression;
  position: Position;
}

/**
 * decode -> drop in-batch copies -> claim in Valkey -> ask ClickHouse about replays -> insert -> dead-letter
 * the poison. Resolves once everything committable is stored; the consumer then commits.
 */
export async function processBatch(batch: PartitionBatch[], deps: PipelineDependencies): Promise<BatchOutcome> {
  const sightings: Sighting[] = [];
  const poison: PoisonMessage[] = [];
  for (const { messages } of batch) {
    for (const message of messages) {
      const position = { topic: message.topic, partition: message.partition, offset: message.offset };
      const decoded = deps.decode(message);
      if (decoded.ok) sightings.push({ event: decoded.event, position });
      else
        poison.push({
          position,
          reason: decoded.reason,
          key: message.key?.toString(),
          value: message.value?.toString(),
        });
    }
  }
  const { kept, dropped } = firstSightings(sightings);

  const claimedAt = performance.now();
  const outcomes = await deps.claims.claim(kept.map((s) => ({ id: s.event.id, position: s.position })));
  // A partition with an id another worker may still be storing waits whole: committing past it could lose it.
  const busy = new Set<number>();
  kept.forEach((s, i) => {
    if (outcomes[i] === "busy") busy.add(s.position.partition);
  });
  const fresh: Impression[] = [];
  const replayed: Impression[] = [];
  let duplicates = 0;
  kept.forEach((s, i) => {
    if (busy.has(s.position.partition)) return;
    if (outcomes[i] === "new") fresh.push(s.event);
    else if (outcomes[i] === "replay") replayed.push(s.event);
    else duplicates++;
  });

  // A replay's claim is this position's own: only ClickHouse knows whether the earlier attempt stored it.
  const stored = replayed.length > 0 ? await findStoredIds(deps.clickhouse, replayed) : new Set<string>();
  const missing = replayed.filter((e) => !stored.has(e.id));
  const rows = missing.length > 0 ? [...fresh, ...missing] : fresh;

  if (performance.now() - claimedAt + deps.insertTimeoutMs >= deps.takeoverAfterMs) {
    throw new ClaimsExpiredError("claims are too old to insert before another worker may take them over");
  }
  await storeImpressions(deps.clickhouse, rows, { timeoutMs: deps.insertTimeoutMs });

  const deadLetters = poison.filter((p) => !busy.has(p.position.partition));
  for (const p of deadLetters)
    deps.logger.warn({ position: positionLog(p.position), reason: p.reason }, "poison message to the DLQ");
  await deps.deadLetters.send(deadLetters);

  deps.logger.debug(
    {
      messages: sightings.length + poison.length,
      inserted: rows.length,
      inBatchDuplicates: dropped,
      duplicates,
      replays: replayed.length,
      replaysAlreadyStored: stored.size,
      poison: deadLetters.length,
      deferredPartitions: [...busy],
    },
    "batch stored",
  );
  return { deferred: [...busy] };
}

function positionLog(p: Position) {
  return { topic: p.topic, partition: p.partition, offset: String(p.offset) };
}
