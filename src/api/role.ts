import type { Config } from "../config.ts";

export type ApiRole = Config["API_ROLE"];

/**
 * What an API process of a role serves. ingest: POST /event, /events, GET /pixel.gif and /sdk.js, which write
 * to Kafka; queries: /stats* and the dashboard, which read ClickHouse. `all` serves both.
 */
export function roleServes(role: ApiRole): { ingest: boolean; queries: boolean } {
  return { ingest: role !== "query", queries: role !== "ingest" };
}
