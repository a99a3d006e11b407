import {
  type API,
  type Callback,
  type CreateRecordsBatchOptions,
  compressionsAlgorithms,
  crc32c,
  createAPI,
  groupByProperty,
  kGetApi,
  type MessageRecord,
  ProduceAcks,
  Producer,
  produceV11,
  Writer,
} from "@platformatic/kafka";

/** Bytes of a v2 record batch before its records: base offset 8, length 4, leader epoch 4, magic 1, crc 4, ... */
const HEADER_BYTES = 61;
/** The length field counts from the leader epoch on: the base offset and the length itself are not in it. */
const LENGTH_EXCLUDES = 12;
/** The CRC covers the batch from the attributes (after leader epoch, magic and the crc itself) to the end. */
const CRC_FROM = 21;
const MAGIC = 2;
const IS_TRANSACTIONAL = 1 << 4;

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

/** A key, value or header field: its length as a varint (-1 for none), then its bytes. */
const fieldBytes = (field: Buffer | null | undefined) => (field ? varIntBytes(field.length) + field.length : 1);

function writeField(buffer: Buffer, at: number, field: Buffer | null | undefined): number {
  if (!field) return writeVarInt(buffer, at, -1);
  const position = writeVarInt(buffer, at, field.length);
  return position + field.copy(buffer, position);
}

/**
 * One partition's messages as a Kafka v2 record batch, byte for byte what @platformatic/kafka's
 * createRecordsBatch writes (src/kafka/record-batch.test.ts compares them), but into one buffer: the library
 * allocates a few small buffers per record and then concatenates them, which at 200k events/s was the API's
 * largest CPU cost and half of its garbage (docs/BENCHMARKS.md).
 */
export function encodeRecordBatch(messages: MessageRecord[], options: Partial<CreateRecordsBatchOptions>): Buffer {
  const now = BigInt(Date.now());
  const firstTimestamp = messages[0]?.timestamp ?? now;
  let maxTimestamp = firstTimestamp;
  const deltas = new Array<number>(messages.length);
  const lengths = new Array<number>(messages.length);
  let recordsBytes = 0;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as MessageRecord;
    const timestamp = message.timestamp ?? now;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    const delta = timestamp === firstTimestamp ? 0 : Number(timestamp - firstTimestamp);
    deltas[i] = delta;
    let length = 1 + varIntBytes(delta) + varIntBytes(i) + fieldBytes(message.key) + fieldBytes(message.value);
    length += varIntBytes(message.headers?.size ?? 0);
    for (const [key, value] of message.headers ?? []) length += fieldBytes(key) + fieldBytes(value);
    lengths[i] = length;
    recordsBytes += varIntBytes(length) + length;
  }
  let records: Buffer = Buffer.allocUnsafe(recordsBytes);
  let at = 0;
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as MessageRecord;
    at = writeVarInt(records, at, lengths[i] as number);
    records[at++] = 0; // attributes: unused
    at = writeVarInt(records, at, deltas[i] as number);
    at = writeVarInt(records, at, i);
    at = writeField(records, at, message.key);
    at = writeField(records, at, message.value);
    at = writeVarInt(records, at, message.headers?.size ?? 0);
    for (const [key, value] of message.headers ?? []) at = writeField(records, writeField(records, at, key), value);
  }

  let attributes = options.transactionalId ? IS_TRANSACTIONAL : 0;
  const compression = options.compression ?? "none";
  if (compression !== "none") {
    const algorithm = compressionsAlgorithms[compression];
    attributes |= algorithm.bitmask;
    records = algorithm.compressSync(records) as Buffer;
  }
  const first = messages[0];
  const firstSequence = first ? (options.sequences?.getWithDefault(`${first.topic}:${first.partition}`, 0) ?? 0) : 0;
  const batch = Buffer.allocUnsafe(HEADER_BYTES + records.length);
  batch.writeBigInt64BE(0n, 0);
  batch.writeInt32BE(HEADER_BYTES - LENGTH_EXCLUDES + records.length, 8);
  batch.writeInt32BE(options.partitionLeaderEpoch ?? 0, 12);
  batch.writeInt8(MAGIC, 16);
  batch.writeInt16BE(attributes, 21);
  batch.writeInt32BE(messages.length - 1, 23);
  batch.writeBigInt64BE(firstTimestamp, 27);
  batch.writeBigInt64BE(maxTimestamp, 35);
  batch.writeBigInt64BE(options.producerId ?? -1n, 43);
  batch.writeInt16BE(options.producerEpoch ?? 0, 51);
  batch.writeInt32BE(firstSequence, 53);
  batch.writeInt32BE(messages.length, 57);
  records.copy(batch, HEADER_BYTES);
  batch.writeUInt32BE(crc32c(batch.subarray(CRC_FROM)), 17);
  return batch;
}

/** Produce v11's request, as @platformatic/kafka's createRequest writes it, with the record batches from encodeRecordBatch. */
export function createProduceRequest(
  acks: number,
  timeout: number,
  messages: MessageRecord[],
  options: Partial<CreateRecordsBatchOptions>,
): Writer {
  const writer = Writer.create()
    .appendString(options.transactionalId)
    .appendInt16(acks)
    .appendInt32(timeout)
    .appendArray(groupByProperty<string, MessageRecord>(messages, "topic"), (topicWriter, [topic, ofTopic]) => {
      topicWriter
        .appendString(topic)
        .appendArray(
          groupByProperty<number, MessageRecord>(ofTopic, "partition"),
          (writer, [partition, ofPartition]) => {
            const batch = encodeRecordBatch(ofPartition, options);
            writer
              .appendInt32(Number(partition))
              .appendUnsignedVarInt(batch.length + 1)
              .append(batch);
          },
        );
    })
    .appendTaggedFields();
  if (acks === ProduceAcks.NO_RESPONSE) writer.context.noResponse = true;
  return writer;
}

/** The Produce v11 API with one-buffer record batches; responses are parsed by the library as before. */
const produceV11WithOneBufferBatches = createAPI(
  produceV11.api.key,
  produceV11.api.version,
  createProduceRequest,
  produceV11.parseResponse,
);

/**
 * @platformatic/kafka's producer, whose Produce v11 requests (what it sends to Kafka 2.8+ brokers) carry record
 * batches from encodeRecordBatch; it picks the API version, routes, retries and parses answers as before.
 */
export class OneBufferBatchProducer<Key, Value, HeaderKey, HeaderValue> extends Producer<
  Key,
  Value,
  HeaderKey,
  HeaderValue
> {
  override [kGetApi]<RequestArguments extends Array<unknown>, ResponseType>(
    name: string,
    callback: Callback<API<RequestArguments, ResponseType>>,
  ): void {
    super[kGetApi]<RequestArguments, ResponseType>(name, (error, api) => {
      const own = api === (produceV11.api as unknown) ? produceV11WithOneBufferBatches : api;
      callback(error, own as API<RequestArguments, ResponseType> | undefined);
    });
  }
}
