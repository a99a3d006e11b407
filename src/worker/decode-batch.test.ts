import { describe, expect, it } from "vitest";
import { makeImpression } from "../../test/support/impressions.ts";
import type { ConsumedMessage } from "../kafka/consumer.ts";
import type { Decoded } from "./decode.ts";
import { decodeBatch } from "./decode-batch.ts";

const message = (partition: number, offset: bigint, value?: string): ConsumedMessage => ({
  topic: "t",
  partition,
  offset,
  leaderEpoch: 0,
  timestamp: 1_764_000_000_000n + offset,
  key: value === undefined ? undefined : Buffer.from(`key-${value}`),
  value: value === undefined ? undefined : Buffer.from(value),
});

/** A value "poison…" is poison; any other value is the id of a valid impression. */
const decode = (m: ConsumedMessage): Decoded => {
  const value = m.value?.toString();
  if (value === undefined || value.startsWith("poison"))
    return { ok: false, code: "malformed_json", reason: `bad ${value}` };
  return { ok: true, event: makeImpression("decode-batch", { id: value }) };
};

describe("decoding a batch", () => {
  it("keeps every partition's impressions with the position each was read from, in batch order", () => {
    const { sightings, poison } = decodeBatch(
      [
        { topic: "t", partition: 3, messages: [message(3, 10n, "a"), message(3, 11n, "b")] },
        { topic: "t", partition: 1, messages: [message(1, 7n, "c")] },
      ],
      decode,
    );
    expect(sightings.map((s) => [s.event.id, s.position])).toEqual([
      ["a", { topic: "t", partition: 3, offset: 10n }],
      ["b", { topic: "t", partition: 3, offset: 11n }],
      ["c", { topic: "t", partition: 1, offset: 7n }],
    ]);
    expect(poison).toEqual([]);
  });

  it("sets poison aside with its position and Kafka timestamp, the decoder's reason and the raw key and value", () => {
    const { sightings, poison } = decodeBatch(
      [{ topic: "t", partition: 0, messages: [message(0, 1n, "a"), message(0, 2n, "poison-1"), message(0, 3n)] }],
      decode,
    );
    expect(sightings.map((s) => s.event.id)).toEqual(["a"]);
    expect(poison).toEqual([
      {
        position: { topic: "t", partition: 0, offset: 2n },
        timestamp: 1_764_000_000_002n,
        code: "malformed_json",
        reason: "bad poison-1",
        key: "key-poison-1",
        value: "poison-1",
      },
      {
        position: { topic: "t", partition: 0, offset: 3n },
        timestamp: 1_764_000_000_003n,
        code: "malformed_json",
        reason: "bad undefined",
        key: undefined,
        value: undefined,
      },
    ]);
  });
});
