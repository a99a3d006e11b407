import { type ClickHouseClient, createClient } from "@clickhouse/client";
import type { Config } from "../config.ts";

export function createClickHouse(config: Config): ClickHouseClient {
  return createClient({
    url: config.CLICKHOUSE_URL,
    database: config.CLICKHOUSE_DATABASE,
    username: config.CLICKHOUSE_USER,
    password: config.CLICKHOUSE_PASSWORD,
    request_timeout: 30_000,
  });
}
