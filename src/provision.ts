import type { Config } from "./config.ts";
import { ensureTopics, impressionTopics } from "./kafka/topics.ts";
import { createClickHouse } from "./storage/clickhouse.ts";
import { createDatabaseStatement, ONE_SERVER } from "./storage/layout.ts";
import { migrate } from "./storage/migrations.ts";
import { applyRetention } from "./storage/retention.ts";

/** Creates what the engines must hold before events flow: the topics, the database and its tables. Idempotent. */
export async function provision(config: Config): Promise<void> {
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  await provisionStorage(config);
}

/** The ClickHouse part of `provision`: the database, its tables, and their TTL matching RETENTION_DAYS. */
export async function provisionStorage(config: Config): Promise<void> {
  const layout = ONE_SERVER;
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
  } finally {
    await clickhouse.close();
  }
}
