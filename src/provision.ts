import type { Config } from "./config.ts";
import { ensureTopics, impressionTopics, type TopicDifference } from "./kafka/topics.ts";
import { createClickHouse } from "./storage/clickhouse.ts";
import { createDatabaseStatement, storageLayout } from "./storage/layout.ts";
import { migrate } from "./storage/migrations.ts";
import { ensureQueryUser } from "./storage/query-user.ts";
import { type RetentionDifference, retentionDifferences } from "./storage/retention.ts";

/** How what exists differs from the configuration: provisioning changes neither, the caller logs both. */
export interface ProvisionReport {
  topics: TopicDifference[];
  retention: RetentionDifference[];
}

/**
 * Creates what the engines must hold before events flow: the topics, the database and its tables. Idempotent.
 * Existing topics and tables are left as they are: how they differ from the configuration is returned.
 */
export async function provision(config: Config): Promise<ProvisionReport> {
  const topics = await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  const retention = await provisionStorage(config);
  return { topics, retention };
}

/** The tables whose TTL is not RETENTION_DAYS, for a process that provisions nothing (the API). */
export async function retentionReport(config: Config): Promise<RetentionDifference[]> {
  const clickhouse = createClickHouse(config);
  try {
    return await retentionDifferences(clickhouse, config.RETENTION_DAYS, storageLayout(config));
  } finally {
    await clickhouse.close();
  }
}

/**
 * The ClickHouse part of `provision`: the database and its tables, and with CLICKHOUSE_QUERY_USER the query routes'
 * read-only user (with CLICKHOUSE_CLUSTER, on every server of the cluster, ON CLUSTER). A table's TTL is written when it is created; returns the tables whose TTL is not
 * RETENTION_DAYS, which only `npm run retention` changes (src/storage/retention.ts).
 */
export async function provisionStorage(config: Config): Promise<RetentionDifference[]> {
  const layout = storageLayout(config);
  const server = createClickHouse({ ...config, CLICKHOUSE_DATABASE: "default" });
  try {
    await server.command({
      query: createDatabaseStatement(layout),
      query_params: { database: config.CLICKHOUSE_DATABASE },
    });
  } finally {
    await server.close();
  }
  const clickhouse = createClickHouse(config);
  try {
    await migrate(clickhouse, { retentionDays: config.RETENTION_DAYS }, layout);
    if (config.CLICKHOUSE_QUERY_USER) {
      await ensureQueryUser(clickhouse, layout, {
        name: config.CLICKHOUSE_QUERY_USER,
        password: config.CLICKHOUSE_QUERY_PASSWORD,
        database: config.CLICKHOUSE_DATABASE,
      });
    }
    return await retentionDifferences(clickhouse, config.RETENTION_DAYS, layout);
  } finally {
    await clickhouse.close();
  }
}
