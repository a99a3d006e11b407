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
export async function fromClickHouse<T>(query: Promise<T>): Promise<T> {
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

  // A query ClickHouse refuses is a bug (500); one it does not answer, a 503.
  const errors = ["invalid_query", "clickhouse_unavailable", "internal_error"] as const;
  const tags = ["query"];

  app.get(
    "/stats",
    {
      schema: {
        tags,
        summary: "Impressions per ad in the last N minutes",
        description: "Exact counts on event time over (now − N min, now]; ads without impressions are absent.",
        querystring: statsQuery,
        response: { 200: responses.counts },
        errors,
      },
    },
    async ({ query }) =>
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
    {
      schema: {
        tags,
        summary: "Impressions per minute for chosen ads",
        description:
          "Every minute the window touches, oldest first, zeros included; the first and last minutes count only " +
          "their part inside the window, so each series sums to the ad's /stats figure.",
        querystring: timeSeriesQuerySchema(config.RETENTION_DAYS),
        response: { 200: responses.timeSeries },
        errors,
      },
    },
    async ({ query }) =>
      fromClickHouse(timeSeries(clickhouse, { now: Date.now(), minutes: query.timeWindowMinutes, adIds: query.adId })),
  );

  app.get(
    "/stats/reach",
    {
      schema: {
        tags,
        summary: "Reach and frequency per ad",
        description:
          "Distinct users (exact) and impressions per distinct user; `limit` keeps the ads with the largest reach.",
        querystring: statsQuery,
        response: { 200: responses.reach },
        errors,
      },
    },
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
