import { type ClickHouseClient, ClickHouseError } from "@clickhouse/client";
import type { FastifyPluginAsync } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { countPerAd, reachPerAd, timeSeries } from "./queries.ts";
import { responses, statsQuerySchema, timeSeriesQuerySchema } from "./schemas.ts";

export interface StatsOptions {
  clickhouse: ClickHouseClient;
  config: Config;
}

/**
 * A ClickHouse error with a code is a query the server refused (a bug: 500); anything else means the
 * server did not answer, which the client may retry.
 */
async function fromClickHouse<T>(query: Promise<T>): Promise<T> {
  try {
    return await query;
  } catch (error) {
    if (error instanceof ClickHouseError) throw error;
    throw new AppError("clickhouse_unavailable", `ClickHouse did not answer: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** GET /stats, /stats/timeseries and /stats/reach: see docs/STATS.md. */
export const statsRoutes: FastifyPluginAsync<StatsOptions> = async (fastify, { clickhouse, config }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const statsQuery = statsQuerySchema(config.RETENTION_DAYS);

  app.get("/stats", { schema: { querystring: statsQuery, response: { 200: responses.counts } } }, async ({ query }) =>
    fromClickHouse(
      countPerAd(clickhouse, {
        now: Date.now(),
        minutes: query.timeWindowMinutes,
        adIds: query.adId,
        limit: query.limit,
      }),
    ),
  );

  app.get(
    "/stats/timeseries",
    { schema: { querystring: timeSeriesQuerySchema(config.RETENTION_DAYS), response: { 200: responses.timeSeries } } },
    async ({ query }) =>
      fromClickHouse(timeSeries(clickhouse, { now: Date.now(), minutes: query.timeWindowMinutes, adIds: query.adId })),
  );

  app.get(
    "/stats/reach",
    { schema: { querystring: statsQuery, response: { 200: responses.reach } } },
    async ({ query }) =>
      fromClickHouse(
        reachPerAd(clickhouse, {
          now: Date.now(),
          minutes: query.timeWindowMinutes,
          adIds: query.adId,
          limit: query.limit,
        }),
      ),
  );
};
