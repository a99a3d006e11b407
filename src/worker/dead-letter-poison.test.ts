import { describe, expect, it } from "vitest";
import { deadLetterPoison } from "./dead-letter-poison.ts";
import type { PoisonMessage } from "./dead-letters.ts";

const poison = (offset: bigint, reason: string): PoisonMessage => ({
  position: { topic: "t", partition: 2, offset },
  timestamp: 0n,
  code: "malformed_json",
  reason,
  key: `k${offset}`,
  value: "{not json",
});

describe("dead-lettering poison", () => {
  it("sends every poison message to the DLQ in one send and logs each with its position and reason", async () => {
    const sent: PoisonMessage[][] = [];
    const warnings: unknown[][] = [];
    const messages = [poison(4n, "malformed JSON"), poison(9n, "invalid impression")];

    await deadLetterPoison(
      messages,
      { send: async (p) => void sent.push([...p]) },
      { warn: (...args: unknown[]) => void warnings.push(args) },
    );

    expect(sent).toEqual([messages]);
    expect(warnings).toEqual([
      [{ position: { topic: "t", partition: 2, offset: "4" }, reason: "malformed JSON" }, "poison message to the DLQ"],
      [
        { position: { topic: "t", partition: 2, offset: "9" }, reason: "invalid impression" },
        "poison message to the DLQ",
      ],
    ]);
  });

  it("fails when the DLQ does not take them, so the batch is retried rather than committed", async () => {
    const send = async () => {
      throw new Error("broker away");
    };
    await expect(deadLetterPoison([poison(1n, "bad")], { send }, { warn: () => {} })).rejects.toThrow("broker away");
  });
});
