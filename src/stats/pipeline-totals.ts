import { Admin, ListOffsetTimestamps } from "@platformatic/kafka";
import type { FastifyPluginAsync } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { measureConsumerLag } from "../kafka/lag.ts";
import { withTimeout } from "../timeout.ts";
import { connectionClosed, type ReadRows, type StatsReader } from "./reader.ts";
import { type PipelineStatus, pipelineQuerySchema, responses } from "./schemas.ts";

export interface PipelineOptions {
  reader: StatsReader;
  config: Config;
  /** Kafka slower than this answers 503, so a dashboard's poll never hangs. */
  kafkaTimeoutMs: number;
}

/**
 * What Kafka says of the pipeline: offsets are message counts (no producer is transactional, so no offset is a
 * control record). `received` includes the copies a retried produce request wrote twice (the API's producer is
 * not idempotent, docs/DESIGN.md "The producer"): the workers drop them, as duplicates.
 */
export interface KafkaTotals {
  /** Sum of the impressions topic's log-end offsets: every message ever written to it. */
  received: bigint;
  /** Sum of the dead-letter topic's log-end offsets. */
  deadLetters: bigint;
  /** The worker group's uncommitted messages (measureConsumerLag's total). */
  lag: bigint;
}

/** What ClickHouse says: rows of the raw table, and the newest event time among them. */
export interface StoredTotals {
  counted: bigint;
  /** Epoch ms; undefined while the table is empty. */
  newestMs: number | undefined;
}

/** Sum of a topic's log-end offsets; 0 for a topic Kafka does not know. */
export async function logEndTotal(admin: Admin, topic: string): Promise<bigint> {
  const metadata = await admin.metadata({ topics: [topic] });
  const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
  if (count === 0) return 0n;
  const partitions = Array.from({ length: count }, (_, partitionIndex) => ({
    partitionIndex,
    timestamp: ListOffsetTimestamps.LATEST,
  }));
  const topics = await admin.listOffsets({ topics: [{ name: topic, partitions }] });
  return topics.flatMap((t) => t.partitions).reduce((sum, p) => sum + p.offset, 0n);
}

export async function kafkaTotals(admin: Admin, config: Config): Promise<KafkaTotals> {
  const [lag, deadLetters] = await Promise.all([
    measureConsumerLag(admin, config.KAFKA_TOPIC, config.KAFKA_CONSUMER_GROUP),
    logEndTotal(admin, config.KAFKA_DLQ_TOPIC),
  ]);
  const received = lag.partitions.reduce((sum, p) => sum + p.logEndOffset, 0n);
  return { received, deadLetters, lag: lag.total };
}

export async function storedTotals(read: ReadRows): Promise<StoredTotals> {
  const [row] = await read<[string, string | number]>({
    query: "SELECT count() AS counted, toUnixTimestamp64Milli(max(ts)) AS newest FROM impressions",
  });
  const counted = BigInt(row?.[0] ?? 0);
  return { counted, newestMs: counted > 0n ? Number(row?.[1]) : undefined };
}

/**
 * The pipeline's totals at `nowMs`. Duplicates are derived, not counted: of what was received, what is not
 * counted, dead-lettered or still waiting (lag) was dropped as a copy; clamped at 0, as the Kafka and
 * ClickHouse readings are not one atomic snapshot (a batch stored between the two readings shows for a moment).
 * Rows expired by the retention TTL also end up here.
 */
export function pipelineStatus(kafka: KafkaTotals, stored: StoredTotals, nowMs: number): PipelineStatus {
  const rest = kafka.received - stored.counted - kafka.deadLetters - kafka.lag;
  return {
    measuredAt: new Date(nowMs).toISOString(),
    received: Number(kafka.received),
    counted: Number(stored.counted),
    deadLetters: Number(kafka.deadLetters),
    lag: Number(kafka.lag),
    duplicates: Number(rest > 0n ? rest : 0n),
    newestEventTime: stored.newestMs === undefined ? null : new Date(stored.newestMs).toISOString(),
    freshnessMs: stored.newestMs === undefined ? null : nowMs - stored.newestMs,
  };
}

/** GET /stats/pipeline: see docs/STATS.md. */
export const pipelineRoutes: FastifyPluginAsync<PipelineOptions> = async (fastify, options) => {
  const { reader, config, kafkaTimeoutMs } = options;
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const admin = new Admin({
    clientId: `${config.KAFKA_CLIENT_ID}-pipeline`,
    bootstrapBrokers: config.KAFKA_BROKERS,
    connectTimeout: kafkaTimeoutMs,
    requestTimeout: kafkaTimeoutMs,
    // A group's coordinator may need a moment (a group just made): a few quick retries, bounded by the timeout.
    retries: 3,
    retryDelay: 100,
  });
  app.addHook("onClose", () => admin.close());

  const fromKafka = async (): Promise<KafkaTotals> => {
    try {
      return await withTimeout(kafkaTotals(admin, config), kafkaTimeoutMs, "Kafka");
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new AppError("kafka_unavailable", `cannot read the topics' offsets: ${reason}`, { cause: error });
    }
  };

  app.get(
    "/stats/pipeline",
    {
      schema: {
        tags: ["query"],
        summary: "The pipeline's totals: received, counted, duplicates, dead letters, lag, freshness",
        description:
          "Read from the engines, so every API process gives the same answer: received and dead letters are the " +
          "topics' log-end offsets, lag the worker group's, counted the raw table's rows, freshness now − the " +
          "newest counted event time. Duplicates are derived: received − counted − dead letters − lag (at least 0). " +
          "Totals since the topics were made; poll twice for rates.",
        querystring: pipelineQuerySchema,
        response: { 200: responses.pipeline },
        errors: ["invalid_query", "kafka_unavailable", "clickhouse_unavailable", "query_timeout", "internal_error"],
      },
    },
    async (_request, reply) => {
      const read = reader.forRequest(connectionClosed(reply));
      const [kafka, stored] = await Promise.all([fromKafka(), storedTotals(read)]);
      return pipelineStatus(kafka, stored, Date.now());
    },
  );
};
