import { randomBytes } from "node:crypto";
import {
  type CompressionAlgorithmValue,
  type CreateRecordsBatchOptions,
  createRecordsBatch,
  type MessageRecord,
  produceV11,
} from "@platformatic/kafka";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createProduceRequest } from "./produce-adapter.ts";
import { encodeRecordBatch } from "./record-batch.ts";

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

/** The library mutates the messages it encodes (their timestamps): each call gets its own copy. */
const copy = (list: MessageRecord[]) => list.map((m) => ({ ...m }));
const ours = (list: MessageRecord[], compression: CompressionAlgorithmValue) =>
  encodeRecordBatch(
    list.map((m) => m.key as Buffer),
    list.map((m) => m.value as Buffer),
    BigInt(NOW),
    compression,
  );

describe("encodeRecordBatch", () => {
  it.each<CompressionAlgorithmValue>(["none", "lz4", "snappy", "zstd", "gzip"])(
    "writes the library's bytes for a producer that is not idempotent, with %s compression",
    (compression) => {
      vi.spyOn(Date, "now").mockReturnValue(NOW);
      for (const count of [1, 2, 127, 128, 1000]) {
        const list = messages(count);
        const library = createRecordsBatch(copy(list), { compression } as CreateRecordsBatchOptions).buffer;
        expect(ours(list, compression).equals(library)).toBe(true);
      }
    },
  );

  it("writes empty values and records of every length class", () => {
    vi.spyOn(Date, "now").mockReturnValue(NOW);
    const list: MessageRecord[] = [0, 1, 63, 64, 8191, 8192, 70_000].map((length, i) => ({
      topic: "t",
      partition: 3,
      key: Buffer.from(`k${i}`),
      value: randomBytes(length),
      headers: new Map(),
    }));
    const library = createRecordsBatch(copy(list), { compression: "none" } as CreateRecordsBatchOptions).buffer;
    expect(ours(list, "none").equals(library)).toBe(true);
  });
});

describe("createProduceRequest", () => {
  it("writes the library's Produce v11 request for record batches of several partitions", () => {
    vi.spyOn(Date, "now").mockReturnValue(NOW);
    // In ascending order, as the library writes them (any order is a valid request).
    const partitions = [0, 2, 7];
    const byPartition = partitions.map((p, i) => messages(30 - i * 10, p));
    const request = createProduceRequest(
      -1,
      2_000,
      "impressions",
      byPartition.map((list, i) => [partitions[i] as number, ours(list, "lz4")]),
    ).buffer;
    const library = produceV11.createRequest(-1, 2_000, copy(byPartition.flat()), { compression: "lz4" }).buffer;
    expect(request.equals(library)).toBe(true);
  });
});
