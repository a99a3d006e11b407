import type { Position } from "../dedup/claims.ts";
import type { Impression } from "../impression/schema.ts";
import type { ConsumedMessage, PartitionBatch } from "../kafka/consumer.ts";
import type { PoisonMessage } from "./dead-letters.ts";
import type { Decoded } from "./decode.ts";

/** An impression and the Kafka position it was read from: the position is what its claim names. */
export interface Sighting {
  event: Impression;
  position: Position;
  /** Its Kafka timestamp (epoch ms): when the API accepted it. */
  acceptedAt: number;
}

/** Decodes every message of the batch, in order: impressions to store, poison to dead-letter. */
export function decodeBatch(
  batch: readonly PartitionBatch[],
  decode: (message: ConsumedMessage) => Decoded,
): { sightings: Sighting[]; poison: PoisonMessage[] } {
  const sightings: Sighting[] = [];
  const poison: PoisonMessage[] = [];
  for (const { messages } of batch) {
    for (const message of messages) {
      const position = { topic: message.topic, partition: message.partition, offset: message.offset };
      const decoded = decode(message);
      if (decoded.ok) sightings.push({ event: decoded.event, position, acceptedAt: Number(message.timestamp) });
      else
        poison.push({
          position,
          timestamp: message.timestamp,
          code: decoded.code,
          reason: decoded.reason,
          key: message.key?.toString(),
          value: message.value?.toString(),
        });
    }
  }
  return { sightings, poison };
}
