import { describe, expect, it } from "vitest";
import type { ConsumedMessage } from "./consumer.ts";
import { heldSince, joined, type PartitionState } from "./consumer-state.ts";

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
