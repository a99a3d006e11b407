import { type ClickHouseClient, ClickHouseError } from "@clickhouse/client";
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
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

/**
 * The ads a request may read: with a tenant's key (one created with --ads), an adId it names outside the key's
 * ads is refused (403 ad_not_allowed), and the query is filtered to the key's ads whatever it names.
 */
function tenantFilter(request: FastifyRequest, adIds: string[]): { adIds: string[]; adPatterns?: readonly string[] } {
  const key = request.apiKey;
  if (!key?.ads) return { adIds };
  key.ads.check(key.name, adIds);
  return { adIds, adPatterns: key.ads.likePatterns };
}

/** GET /stats, /stats/timeseries and /stats/reach: see docs/STATS.md. */
export const statsRoutes: FastifyPluginAsync<StatsOptions> = async (fastify, { clickhouse, config }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const statsQuery = statsQuerySchema(config.RETENTION_DAYS);

  // A query ClickHouse refuses is a bug (500); one it does not answer, a 503.
  const errors = ["invalid_query", "ad_not_allowed", "clickhouse_unavailable", "internal_error"] as const;
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
    async (request) =>
      fromClickHouse(
        countPerAd(clickhouse, {
          now: Date.now(),
          minutes: request.query.timeWindowMinutes,
          ...tenantFilter(request, request.query.adId),
          limit: request.query.limit,
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
    async (request) =>
      fromClickHouse(
        timeSeries(clickhouse, {
          now: Date.now(),
          minutes: request.query.timeWindowMinutes,
          ...tenantFilter(request, request.query.adId),
        }),
      ),
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
    async (request) =>
      fromClickHouse(
        reachPerAd(clickhouse, {
          now: Date.now(),
          minutes: request.query.timeWindowMinutes,
          ...tenantFilter(request, request.query.adId),
          limit: request.query.limit,
        }),
      ),
  );
};
