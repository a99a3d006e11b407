/**
 * Every use of @platformatic/kafka's undocumented surface, in one place: the producer writes its own record
 * batches and Produce v11 requests (docs/DESIGN.md, "The producer"), which the library's documented `send()` does
 * not allow. The package is pinned to one exact version in package.json, and `produce-adapter.test.ts` and
 * `produce-adapter.int.test.ts` fail, naming the hook, if an upgrade changes anything relied on here; the
 * record batches' bytes are compared with the library's own in `record-batch.test.ts`.
 */
import {
  type Broker,
  type CompressionAlgorithmValue,
  type Connection,
  compressionsAlgorithms,
  crc32c,
  createAPI,
  kGetApi,
  kGetConnection,
  ProduceAcks,
  type Producer,
  produceV11,
  protocolErrors,
  protocolErrorsCodesById,
  ResponseError,
  Writer,
} from "@platformatic/kafka";

/** The only Produce version the producer writes (Kafka 2.8 and later speak it, Kafka 4 included). */
export const PRODUCE_VERSION = 11;

/** A partition number and its record batch (encodeRecordBatch). */
export type PartitionRecordBatch = readonly [partition: number, batch: Buffer];

/** A partition's records that Kafka did not take, and whether sending them again may succeed. */
export interface Refusal {
  retriable: boolean;
  reason: string;
}

/** The records of a batch compressed as the library compresses them, and the bits that say how in the batch. */
export function compressRecords(records: Buffer, compression: CompressionAlgorithmValue): [Buffer, number] {
  if (compression === "none") return [records, 0];
  const algorithm = compressionsAlgorithms[compression];
  return [algorithm.compressSync(records) as Buffer, algorithm.bitmask];
}

/** CRC-32C, as a record batch's checksum. */
export const batchChecksum = (bytes: Buffer): number => crc32c(bytes);

/** Which Produce version the library would use with these brokers (the highest both know). */
export function produceVersion(client: Producer): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    client[kGetApi]("Produce", (error, api) => (api ? resolve(api.version) : reject(error)));
  });
}

/** The client's pooled connection to a broker (opened if need be). */
export function connectionTo(client: Producer, broker: Broker): Promise<Connection> {
  return new Promise<Connection>((resolve, reject) => {
    client[kGetConnection](broker, (error, opened) => (opened ? resolve(opened) : reject(error)));
  });
}

/** Produce v11's request, as @platformatic/kafka's createRequest writes it, for record batches of one topic. */
export function createProduceRequest(
  acks: number,
  timeoutMs: number,
  topic: string,
  batches: PartitionRecordBatch[],
): Writer {
  const writer = Writer.create()
    .appendString(null)
    .appendInt16(acks)
    .appendInt32(timeoutMs)
    .appendArray([topic], (topicWriter, name) => {
      topicWriter.appendString(name).appendArray(batches, (partitionWriter, [partition, batch]) => {
        partitionWriter
          .appendInt32(partition)
          .appendUnsignedVarInt(batch.length + 1)
          .append(batch);
      });
    })
    .appendTaggedFields();
  if (acks === ProduceAcks.NO_RESPONSE) writer.context.noResponse = true;
  return writer;
}

export type ProduceResponse = ReturnType<typeof produceV11.parseResponse>;

/** The answer with every partition's outcome, where the library's parser throws as soon as one partition failed. */
function parseProduceResponse(...args: Parameters<typeof produceV11.parseResponse>): ProduceResponse {
  try {
    return produceV11.parseResponse(...args);
  } catch (error) {
    const response = error instanceof ResponseError ? (error as { response?: ProduceResponse }).response : undefined;
    if (response) return response;
    throw error;
  }
}

const produceRecordBatches = createAPI<
  [acks: number, timeoutMs: number, topic: string, batches: PartitionRecordBatch[]],
  ProduceResponse
>(produceV11.api.key, produceV11.api.version, createProduceRequest, parseProduceResponse);

/**
 * Sends one Produce v11 request with these record batches on `connection` and answers every partition's outcome
 * (a refused partition does not reject); rejects only when no answer came (a lost connection, a timeout).
 */
export function produceOn(
  connection: Connection,
  acks: number,
  timeoutMs: number,
  topic: string,
  batches: PartitionRecordBatch[],
): Promise<ProduceResponse> {
  return produceRecordBatches.async(connection, acks, timeoutMs, topic, batches);
}

/** What a partition's error code means: the error's name and whether the library would retry it. */
export function refusalOf(errorCode: number, message: string | null | undefined): Refusal {
  const id = protocolErrorsCodesById[errorCode as keyof typeof protocolErrorsCodesById];
  const known = id === undefined ? undefined : protocolErrors[id as keyof typeof protocolErrors];
  return {
    retriable: known?.canRetry ?? false,
    reason: `${id ?? `error ${errorCode}`}${message ? `: ${message}` : ""}`,
  };
}
