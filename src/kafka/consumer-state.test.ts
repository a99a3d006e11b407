import { describe, expect, it } from "vitest";
import type { ConsumedMessage } from "./consumer.ts";
import { heldSince, joined, type PartitionState, starvedPartitions } from "./consumer-state.ts";

const message = (offset: bigint): ConsumedMessage => ({
  topic: "t",
  partition: 3,
  offset,
  leaderEpoch: 0,
  timestamp: 0n,
  key: undefined,
  value: undefined,
});

const holding: PartitionState = {
  assigned: true,
  losses: 2,
  pending: [message(7n), message(8n)],
  pendingSince: 1_000,
  nextOffset: 9n,
  deferredUntil: 1_500,
};

describe("joined", () => {
  it("starts a newly assigned partition with nothing pending and no loss", () => {
    expect(joined(undefined, true)).toEqual({
      assigned: true,
      losses: 0,
      pending: [],
      pendingSince: 0,
      nextOffset: undefined,
      deferredUntil: 0,
    });
  });

  it("keeps a kept partition's pending messages and next offset", () => {
    expect(joined(holding, true)).toEqual(holding);
  });

  it("drops a lost partition's pending messages and next offset and counts the loss", () => {
    expect(joined(holding, false)).toEqual({
      ...holding,
      assigned: false,
      losses: 3,
      pending: [],
      nextOffset: undefined,
    });
  });

  it("counts no loss for a partition that was not assigned", () => {
    const lost = joined(holding, false);
    expect(joined(lost, false)).toEqual(lost);
  });
});

describe("heldSince", () => {
  it("holds a batch whose partition was kept through joins", () => {
    expect(heldSince(joined(joined(holding, true), true), holding.losses)).toBe(true);
  });

  it("does not hold a batch whose partition was lost", () => {
    expect(heldSince(joined(holding, false), holding.losses)).toBe(false);
  });

  it("does not hold a batch whose partition was lost and assigned again", () => {
    expect(heldSince(joined(joined(holding, false), true), holding.losses)).toBe(false);
  });
});

describe("starvedPartitions", () => {
  const watch = (partition: number, lag: bigint, committedOffset: bigint | undefined, idle = true) => ({
    partition,
    lag,
    committedOffset,
    idle,
  });

  it("names a partition idle with lag and the same commit at two measurements in a row", () => {
    const suspects = new Map<number, bigint | undefined>();
    expect(starvedPartitions(suspects, [watch(0, 5n, 10n), watch(1, 0n, 3n)])).toEqual([]);
    expect(starvedPartitions(suspects, [watch(0, 5n, 10n), watch(1, 0n, 3n)])).toEqual([0]);
  });

  it("clears a suspect that commits, gets work in hand, catches up or is no longer owned", () => {
    const suspects = new Map<number, bigint | undefined>();
    starvedPartitions(suspects, [watch(0, 5n, 10n), watch(1, 5n, undefined), watch(2, 5n, 7n), watch(3, 5n, 1n)]);
    const next = [watch(0, 5n, 12n), watch(1, 5n, undefined, false), watch(2, 0n, 12n)];
    expect(starvedPartitions(suspects, next)).toEqual([]);
    expect([...suspects.keys()]).toEqual([0]);
  });

  it("counts a partition that never committed like any other", () => {
    const suspects = new Map<number, bigint | undefined>();
    starvedPartitions(suspects, [watch(4, 9n, undefined)]);
    expect(starvedPartitions(suspects, [watch(4, 9n, undefined)])).toEqual([4]);
  });
});
