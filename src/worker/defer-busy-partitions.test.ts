import { describe, expect, it } from "vitest";
import { makeImpression } from "../../test/support/impressions.ts";
import type { ClaimOutcome } from "../dedup/claims.ts";
import type { ClaimedSighting } from "./claim-ids.ts";
import type { PoisonMessage } from "./dead-letters.ts";
import { deferBusyPartitions } from "./defer-busy-partitions.ts";

const claimed = (id: string, partition: number, outcome: ClaimOutcome): ClaimedSighting => ({
  event: makeImpression("busy", { id }),
  position: { topic: "t", partition, offset: 0n },
  acceptedAt: 0,
  outcome,
});
const poison = (partition: number): PoisonMessage => ({
  position: { topic: "t", partition, offset: 0n },
  timestamp: 0n,
  code: "invalid_impression",
  reason: "bad",
  key: undefined,
  value: undefined,
});

describe("deferring partitions another worker may still be storing", () => {
  it("holds back every sighting and poison message of a partition with a busy id; the others go on", () => {
    const result = deferBusyPartitions(
      [
        claimed("a", 0, "new"),
        claimed("b", 1, "new"),
        claimed("c", 1, "busy"),
        claimed("d", 1, "replay"),
        claimed("e", 2, "duplicate"),
      ],
      [poison(0), poison(1), poison(2)],
    );
    expect(result.deferred).toEqual([1]);
    expect(result.settled.map((s) => s.event.id)).toEqual(["a", "e"]);
    expect(result.poison.map((p) => p.position.partition)).toEqual([0, 2]);
  });

  it("names each deferred partition once, in the order its first busy id came", () => {
    const result = deferBusyPartitions(
      [claimed("a", 3, "busy"), claimed("b", 0, "busy"), claimed("c", 3, "busy"), claimed("d", 2, "new")],
      [],
    );
    expect(result.deferred).toEqual([3, 0]);
    expect(result.settled.map((s) => s.event.id)).toEqual(["d"]);
  });

  it("defers nothing when no id is busy", () => {
    const all = [claimed("a", 0, "new"), claimed("b", 1, "replay"), claimed("c", 1, "duplicate")];
    const result = deferBusyPartitions(all, [poison(1)]);
    expect(result).toEqual({ deferred: [], settled: all, poison: [poison(1)] });
  });
});
