import type { Impression } from "./schema.ts";

/**
 * The Kafka value: compact JSON of a validated impression, fields in a fixed order.
 * Built by hand because validated strings are restricted to characters that need no JSON escaping.
 */
export function encodeImpression(event: Impression): string {
  return `{"id":"${event.id}","ts":${event.ts},"userId":"${event.userId}","adId":"${event.adId}"}`;
}
