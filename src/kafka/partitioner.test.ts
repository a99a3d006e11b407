import { randomBytes } from "node:crypto";
import { defaultPartitioner } from "@platformatic/kafka";
import { describe, expect, it } from "vitest";
import { keyPartitioner, murmur2 } from "./partitioner.ts";

describe("keyPartitioner", () => {
  it("gives @platformatic/kafka's default partition for every key length and byte value", () => {
    for (let length = 0; length <= 140; length++) {
      for (let n = 0; n < 50; n++) {
        const key = randomBytes(length);
        expect(keyPartitioner(undefined, key)).toBe(defaultPartitioner(undefined as never, key));
      }
    }
  });

  it("matches Java's Utils.murmur2 on Kafka's own test vectors", () => {
    // From Kafka's UtilsTest.testMurmur2.
    const vectors: [string, number][] = [
      ["21", -973932308],
      ["foobar", -790332482],
      ["a-little-bit-long-string", -985981536],
      ["a-little-bit-longer-string", -1486304829],
      ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
    ];
    for (const [text, expected] of vectors) expect(murmur2(Buffer.from(text))).toBe(expected);
  });

  it("sends a key without bytes to partition 0", () => {
    expect(keyPartitioner(undefined, undefined)).toBe(0);
  });
});
