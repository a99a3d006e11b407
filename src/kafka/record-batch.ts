import type { CompressionAlgorithmValue } from "@platformatic/kafka";
import { batchChecksum, compressRecords } from "./produce-adapter.ts";

/** Bytes of a v2 record batch before its records: base offset 8, length 4, leader epoch 4, magic 1, crc 4, ... */
const HEADER_BYTES = 61;
/** The length field counts from the leader epoch on: the base offset and the length itself are not in it. */
const LENGTH_EXCLUDES = 12;
/** The CRC covers the batch from the attributes (after leader epoch, magic and the crc itself) to the end. */
const CRC_FROM = 21;
const MAGIC = 2;
/** A producer without an id (not idempotent): what @platformatic/kafka writes for one. */
const NO_PRODUCER_ID = -1n;

const zigZag = (value: number) => ((value << 1) ^ (value >> 31)) >>> 0;

function varIntBytes(value: number): number {
  let rest = zigZag(value);
  let bytes = 1;
  while (rest >= 0x80) {
    rest >>>= 7;
    bytes++;
  }
  return bytes;
}

function writeVarInt(buffer: Buffer, at: number, value: number): number {
  let rest = zigZag(value);
  let position = at;
  while (rest >= 0x80) {
    buffer[position++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  buffer[position++] = rest;
  return position;
}

/** A key or value field: its length as a varint, then its bytes. */
function writeField(buffer: Buffer, at: number, field: Buffer): number {
  const position = writeVarInt(buffer, at, field.length);
  return position + field.copy(buffer, position);
}

/**
 * One partition's records as a Kafka v2 record batch, all with `timestamp` and no headers, for a producer that
 * is not idempotent: byte for byte what @platformatic/kafka's createRecordsBatch writes for the same records
 * (src/kafka/record-batch.test.ts compares them), but into one buffer and from the keys and values alone: the
 * library allocates a few small buffers and a message object per record, which at 200k events/s was the API's
 * largest CPU cost and half of its garbage (docs/BENCHMARKS-ARCHIVE.md).
 */
export function encodeRecordBatch(
  keys: readonly Buffer[],
  values: readonly Buffer[],
  timestamp: bigint,
  compression: CompressionAlgorithmValue,
): Buffer {
  const count = keys.length;
  const lengths = new Array<number>(count);
  let recordsBytes = 0;
  for (let i = 0; i < count; i++) {
    const key = keys[i] as Buffer;
    const value = values[i] as Buffer;
    // attributes, timestamp delta 0, offset delta, key, value, no headers
    const length =
      1 + 1 + varIntBytes(i) + varIntBytes(key.length) + key.length + varIntBytes(value.length) + value.length + 1;
    lengths[i] = length;
    recordsBytes += varIntBytes(length) + length;
  }
  const plain = Buffer.allocUnsafe(recordsBytes);
  let at = 0;
  for (let i = 0; i < count; i++) {
    at = writeVarInt(plain, at, lengths[i] as number);
    plain[at++] = 0; // attributes: unused
    plain[at++] = 0; // timestamp delta: every record has the batch's timestamp
    at = writeVarInt(plain, at, i);
    at = writeField(plain, at, keys[i] as Buffer);
    at = writeField(plain, at, values[i] as Buffer);
    plain[at++] = 0; // no headers
  }

  const [records, attributes] = compressRecords(plain, compression);
  const batch = Buffer.allocUnsafe(HEADER_BYTES + records.length);
  batch.writeBigInt64BE(0n, 0);
  batch.writeInt32BE(HEADER_BYTES - LENGTH_EXCLUDES + records.length, 8);
  batch.writeInt32BE(0, 12); // partition leader epoch
  batch.writeInt8(MAGIC, 16);
  batch.writeInt16BE(attributes, 21);
  batch.writeInt32BE(count - 1, 23);
  batch.writeBigInt64BE(timestamp, 27);
  batch.writeBigInt64BE(timestamp, 35);
  batch.writeBigInt64BE(NO_PRODUCER_ID, 43);
  batch.writeInt16BE(0, 51); // producer epoch
  batch.writeInt32BE(0, 53); // first sequence
  batch.writeInt32BE(count, 57);
  records.copy(batch, HEADER_BYTES);
  batch.writeUInt32BE(batchChecksum(batch.subarray(CRC_FROM)), 17);
  return batch;
}
