import type { SettledSighting } from "./defer-busy-partitions.ts";

/**
 * A settled sighting whose `new` may not be trusted is `expired`: no claim of its id exists now, but the message
 * is so old that a claim of it may have existed and expired. ClickHouse decides, as for a replay.
 */
export type CheckedSighting = Omit<SettledSighting, "outcome"> & { outcome: SettledSighting["outcome"] | "expired" };

/**
 * The age below which a message's `new` is trusted: the window less a margin for the clocks of the API's hosts
 * (which stamp the Kafka timestamp) running ahead of the worker's: a minute, or a tenth of a shorter window.
 */
export function trustedAgeMs(windowMs: number): number {
  return windowMs - Math.min(60_000, windowMs / 10);
}

/**
 * Valkey's `new` says no claim of the id exists now: it was never claimed, or its claim expired. A claim lives
 * `windowMs` from the first sighting, which comes after the API accepted the message (its Kafka timestamp,
 * `acceptedAt`), so a message younger than the window cannot have outlived a claim of its own: its `new` is
 * trusted. An older one may be a message read again long after it was stored (a consumer group with no committed
 * offsets starts at the earliest offset; a partition left uncommitted past the window): `expired`.
 */
export function flagExpiredClaims(
  settled: readonly SettledSighting[],
  clock: { now: number; windowMs: number },
): CheckedSighting[] {
  const acceptedBefore = clock.now - trustedAgeMs(clock.windowMs);
  return settled.map((s) => (s.outcome === "new" && s.acceptedAt <= acceptedBefore ? { ...s, outcome: "expired" } : s));
}
