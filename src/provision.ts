import type { Config } from "./config.ts";
import { ensureTopics, impressionTopics, type TopicDifference } from "./kafka/topics.ts";
import { createClickHouse } from "./storage/clickhouse.ts";
import { createDatabaseStatement, storageLayout } from "./storage/layout.ts";
import { migrate } from "./storage/migrations.ts";
import { ensureQueryUser } from "./storage/query-user.ts";
import { applyRetention } from "./storage/retention.ts";

/**
 * Creates what the engines must hold before events flow: the topics, the database and its tables. Idempotent.
 * Existing topics are left as they are: how they differ from the configuration is returned, for the caller to log.
 */
export async function provision(config: Config): Promise<TopicDifference[]> {
  const differences = await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  await provisionStorage(config);
  return differences;
}

/**
 * The ClickHouse part of `provision`: the database, its tables, their TTL matching RETENTION_DAYS, and with
 * CLICKHOUSE_QUERY_USER the query routes' read-only user; with CLICKHOUSE_CLUSTER, on every server of the
 * cluster (ON CLUSTER).
 */
export async function provisionStorage(config: Config): Promise<void> {
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
    await applyRetention(clickhouse, config.RETENTION_DAYS, layout);
    if (config.CLICKHOUSE_QUERY_USER) {
      await ensureQueryUser(clickhouse, layout, {
        name: config.CLICKHOUSE_QUERY_USER,
        password: config.CLICKHOUSE_QUERY_PASSWORD,
        database: config.CLICKHOUSE_DATABASE,
      });
    }
  } finally {
    await clickhouse.close();
  }
}
