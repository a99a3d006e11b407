import { describe, expect, it } from "vitest";
import { makeImpression } from "../../test/support/impressions.ts";
import type { ClaimOutcome } from "../dedup/claims.ts";
import type { ConsumedMessage, PartitionBatch } from "../kafka/consumer.ts";
import type { PoisonMessage } from "./dead-letters.ts";
import type { Sighting } from "./decode-batch.ts";
import type { SettledSighting } from "./defer-busy-partitions.ts";
import { type PartitionTally, tallyBatch } from "./tally.ts";

const sighting = (partition: number, offset: number, id: string): Sighting => ({
  event: makeImpression("tally", { id }),
  position: { topic: "t", partition, offset: BigInt(offset) },
  acceptedAt: 0,
});
const settle = (s: Sighting, outcome: Exclude<ClaimOutcome, "busy">): SettledSighting => ({ ...s, outcome });
const poison = (partition: number, offset: number, code: PoisonMessage["code"]): PoisonMessage => ({
  position: { topic: "t", partition, offset: BigInt(offset) },
  timestamp: 0n,
  code,
  reason: code,
  key: undefined,
  value: undefined,
});
const partitionBatch = (partition: number, count: number): PartitionBatch => ({
  topic: "t",
  partition,
  messages: Array.from({ length: count }, () => ({}) as ConsumedMessage),
});
const outcomes = (t: PartitionTally) =>
  t.counted +
  t.duplicatesInBatch +
  t.duplicatesInWindow +
  Object.values(t.deadLettered).reduce((total, n) => total + (n ?? 0), 0);

describe("tallyBatch", () => {
  it("gives every message of a settled partition exactly one outcome", () => {
    // Partition 0: a, a copy of a, b (a duplicate in the window), c (a replay), poison. Partition 1: d, poison x2.
    const a = sighting(0, 0, "a");
    const copy = sighting(0, 1, "a");
    const b = sighting(0, 2, "b");
    const c = sighting(0, 3, "c");
    const d = sighting(1, 0, "d");
    const tallies = tallyBatch({
      batch: [partitionBatch(0, 5), partitionBatch(1, 3)],
      sightings: [a, copy, b, c, d],
      kept: [a, b, c, d],
      settled: [settle(a, "new"), settle(b, "duplicate"), settle(c, "replay"), settle(d, "new")],
      stored: new Set(["c"]),
      poison: [poison(0, 4, "malformed_json"), poison(1, 1, "empty_value"), poison(1, 2, "malformed_json")],
      deferred: [],
    });
    expect(tallies.get(0)).toEqual({
      consumed: 5,
      counted: 2,
      replayed: 1,
      duplicatesInBatch: 1,
      duplicatesInWindow: 1,
      deadLettered: { malformed_json: 1 },
    });
    expect(tallies.get(1)).toMatchObject({
      consumed: 3,
      counted: 1,
      deadLettered: { empty_value: 1, malformed_json: 1 },
    });
    for (const tally of tallies.values()) expect(outcomes(tally)).toBe(tally.consumed);
  });

  it("tallies nothing of a deferred partition: none of it is committed", () => {
    const first = sighting(2, 0, "e");
    const copy = sighting(2, 1, "e");
    const tallies = tallyBatch({
      batch: [partitionBatch(2, 3)],
      sightings: [first, copy],
      kept: [first],
      settled: [],
      stored: new Set(),
      poison: [],
      deferred: [2],
    });
    expect(tallies.size).toBe(0);
  });

  it("counts an expired claim: a replay if ClickHouse held it, else a message counted now", () => {
    const held = sighting(0, 0, "held");
    const unheld = sighting(0, 1, "unheld");
    const tallies = tallyBatch({
      batch: [partitionBatch(0, 2)],
      sightings: [held, unheld],
      kept: [held, unheld],
      settled: [
        { ...held, outcome: "expired" },
        { ...unheld, outcome: "expired" },
      ],
      stored: new Set(["held"]),
      poison: [],
      deferred: [],
    });
    expect(tallies.get(0)).toMatchObject({ consumed: 2, counted: 2, replayed: 1, duplicatesInWindow: 0 });
  });
});
