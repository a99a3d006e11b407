import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
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

/** Time past QUERY_TIMEOUT_SECONDS for the server's own timeout error to arrive before the client gives up. */
const QUERY_REQUEST_MARGIN_MS = 5_000;

/**
 * The query role's client: as CLICKHOUSE_QUERY_USER when set (provisioning gives it SELECT on the database
 * only), and every statement sent with readonly=2 whoever the user is, so nothing sent through it can write,
 * alter or drop (2, not 1: the query routes set their limits per query, which readonly=1 forbids; 2 still
 * forbids changing readonly itself). The client gives up a little after the server's max_execution_time.
 */
export function createQueryClickHouse(config: Config): ClickHouseClient {
  const user = config.CLICKHOUSE_QUERY_USER;
  return createClient({
    url: config.CLICKHOUSE_URL,
    database: config.CLICKHOUSE_DATABASE,
    username: user ?? config.CLICKHOUSE_USER,
    password: user ? config.CLICKHOUSE_QUERY_PASSWORD : config.CLICKHOUSE_PASSWORD,
    request_timeout: config.QUERY_TIMEOUT_SECONDS * 1000 + QUERY_REQUEST_MARGIN_MS,
    clickhouse_settings: { readonly: "2" },
    // Every failure reaches the API's error handler, which logs what is worth logging; the client's own log would
    // print a stack for each query a limit stopped or a client's hang-up cancelled.
    log: { level: ClickHouseLogLevel.OFF },
  });
}
