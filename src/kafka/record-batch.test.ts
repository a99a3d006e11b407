import { randomBytes } from "node:crypto";
import {
  type CompressionAlgorithmValue,
  type CreateRecordsBatchOptions,
  createRecordsBatch,
  type MessageRecord,
  NumericMap,
  produceV11,
} from "@platformatic/kafka";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createProduceRequest, encodeRecordBatch } from "./record-batch.ts";

const NOW = 1_764_000_000_123;

afterEach(() => {
  vi.restoreAllMocks();
});

/** Keyed JSON-like messages of every size class, some with multi-byte characters, as the API sends them. */
function messages(count: number, partition = 0): MessageRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    topic: "impressions",
    partition,
    key: Buffer.from(`id-${i}-${randomBytes(i % 40).toString("hex")}`),
    value: Buffer.from(`{"id":"id-${i}","ts":${NOW},"userId":"u-é${"x".repeat(i % 300)}","adId":"ad-${i % 10}"}`),
    headers: new Map<Buffer, Buffer>(),
  }));
}

/** The library mutates the messages it encodes (their timestamps): each side gets its own copy. */
const copy = (list: MessageRecord[]) => list.map((m) => ({ ...m }));

function expectSameBatch(list: MessageRecord[], options: Partial<CreateRecordsBatchOptions>): void {
  const ours = encodeRecordBatch(copy(list), options);
  const library = createRecordsBatch(copy(list), options as CreateRecordsBatchOptions).buffer;
  expect(ours.equals(library)).toBe(true);
}

describe("encodeRecordBatch", () => {
  it.each<CompressionAlgorithmValue>(["none", "lz4", "snappy", "zstd", "gzip"])(
    "writes the library's bytes with %s compression",
    (compression) => {
      vi.spyOn(Date, "now").mockReturnValue(NOW);
      for (const count of [1, 2, 127, 128, 1000]) expectSameBatch(messages(count), { compression });
    },
  );

  it("writes the library's bytes for null keys and values, empty values, headers and mixed timestamps", () => {
    vi.spyOn(Date, "now").mockReturnValue(NOW);
    const list: MessageRecord[] = [
      { topic: "t", partition: 3, value: Buffer.from("no key") },
      { topic: "t", partition: 3, key: Buffer.from("k"), value: Buffer.alloc(0), timestamp: BigInt(NOW - 5_000) },
      { topic: "t", partition: 3, key: Buffer.from("k2"), value: null as unknown as Buffer },
      {
        topic: "t",
        partition: 3,
        key: Buffer.from("h"),
        value: Buffer.from("with headers"),
        headers: new Map([
          [Buffer.from("a"), Buffer.from("1")],
          [Buffer.from("trace"), randomBytes(200)],
        ]),
        timestamp: BigInt(NOW + 70_000),
      },
    ];
    expectSameBatch(list, { compression: "none" });
    expectSameBatch(list, { compression: "lz4" });
  });

  it("writes the library's bytes for an idempotent or transactional producer's fields", () => {
    vi.spyOn(Date, "now").mockReturnValue(NOW);
    const sequences = new NumericMap();
    sequences.set("impressions:5", 4_242);
    expectSameBatch(messages(50, 5), {
      compression: "lz4",
      producerId: 77n,
      producerEpoch: 3,
      sequences,
      transactionalId: "tx-1",
      partitionLeaderEpoch: 9,
    });
  });
});

describe("createProduceRequest", () => {
  it("writes the library's Produce v11 request for messages of several topics and partitions", () => {
    vi.spyOn(Date, "now").mockReturnValue(NOW);
    const list = [...messages(30, 0), ...messages(20, 7), ...messages(5, 2).map((m) => ({ ...m, topic: "other" }))];
    const options = { compression: "lz4" as const };
    const ours = createProduceRequest(-1, 2_000, copy(list), options).buffer;
    const library = produceV11.createRequest(-1, 2_000, copy(list), options).buffer;
    expect(ours.equals(library)).toBe(true);
  });
});
