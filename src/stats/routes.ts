import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Config } from "../config.ts";
import { NET_LABELS } from "../traffic/labels.ts";
import { trafficPerAd } from "./ivt.ts";
import { countPerAd, reachPerAd, summaryPerAd, timeSeries, type WindowQuery } from "./queries.ts";
import { connectionClosed, type StatsReader } from "./reader.ts";
import {
  ivtQuerySchema,
  reachQuerySchema,
  responses,
  statsQuerySchema,
  summaryQuerySchema,
  type TrafficView,
  timeSeriesQuerySchema,
} from "./schemas.ts";

export interface StatsOptions {
  reader: StatsReader;
  config: Config;
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

/** The labels a view counts: net (valid and unclassified), gross (all), invalid (all but the net ones). */
function trafficFilter(view: TrafficView): Pick<WindowQuery, "traffic" | "excludeTraffic"> {
  if (view === "net") return { traffic: NET_LABELS };
  return view === "invalid" ? { excludeTraffic: NET_LABELS } : {};
}

/**
 * What every counting route reads, from its request: the window, the ads (tenant-scoped), the kind asked and the
 * traffic labels (net by default). The one way these routes turn a request into a query, so /stats, its series,
 * reach and the summary always count the same events.
 */
function windowFilter(
  request: FastifyRequest<{
    Querystring: { timeWindowMinutes: number; adId: string[]; event?: string; traffic: TrafficView };
  }>,
): WindowQuery {
  const { timeWindowMinutes, adId, event, traffic } = request.query;
  return {
    now: Date.now(),
    minutes: timeWindowMinutes,
    ...tenantFilter(request, adId),
    kind: event,
    ...trafficFilter(traffic),
  };
}

/** GET /stats, /stats/timeseries, /stats/reach, /stats/summary and /stats/ivt: see docs/STATS.md. */
export const statsRoutes: FastifyPluginAsync<StatsOptions> = async (fastify, { reader, config }) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const statsQuery = statsQuerySchema(config.RETENTION_DAYS);

  // A query ClickHouse refuses is a bug (500); one it stops at a limit, a 400 or 503; one it does not answer, a 503.
  const errors = [
    "invalid_query",
    "ad_not_allowed",
    "query_too_large",
    "query_timeout",
    "clickhouse_unavailable",
    "internal_error",
  ] as const;
  /** The schema of every route here: its summary and description, its query, its 200 and the errors above. */
  const schema = <Q, R>(doc: { summary: string; description: string; querystring: Q; ok: R }) => ({
    tags: ["query"],
    summary: doc.summary,
    description: doc.description,
    querystring: doc.querystring,
    response: { 200: doc.ok },
    errors,
  });
  /** The reader of one request: a query whose client hung up is cancelled. */
  const readerFor = (reply: FastifyReply) => reader.forRequest(connectionClosed(reply));

  app.get(
    "/stats",
    {
      schema: schema({
        summary: "Impressions (or viewable impressions, clicks, …) per ad in the last N minutes",
        description:
          "Exact counts on event time over (now − N min, now] of one kind of event (`event`, impression by " +
          "default), each counted once per impression id; ads without any are absent. Net of invalid traffic " +
          "unless `traffic` says otherwise.",
        querystring: statsQuery,
        ok: responses.counts,
      }),
    },
    async (request, reply) => countPerAd(readerFor(reply), { ...windowFilter(request), limit: request.query.limit }),
  );

  app.get(
    "/stats/timeseries",
    {
      schema: schema({
        summary: "Impressions per minute for chosen ads",
        description:
          "Every minute the window touches, oldest first, zeros included; the first and last minutes count only " +
          "their part inside the window, so each series sums to the ad's /stats figure.",
        querystring: timeSeriesQuerySchema(config.RETENTION_DAYS),
        ok: responses.timeSeries,
      }),
    },
    async (request, reply) => timeSeries(readerFor(reply), windowFilter(request)),
  );

  app.get(
    "/stats/reach",
    {
      schema: schema({
        summary: "Reach and frequency per ad",
        description:
          "Distinct identified users (exact) and impressions per distinct identified user; events without a " +
          "userId count in `impressions` only. `limit` keeps the ads with the largest reach.",
        querystring: reachQuerySchema(config.RETENTION_DAYS),
        ok: responses.reach,
      }),
    },
    async (request, reply) => reachPerAd(readerFor(reply), { ...windowFilter(request), limit: request.query.limit }),
  );

  app.get(
    "/stats/summary",
    {
      schema: schema({
        summary: "What advertisers pay for, per ad: impressions, viewable, clicks, video completes and their rates",
        description:
          "Exact counts over (now − N min, now], read as /stats reads them: impressions, viewable impressions, " +
          "viewability rate, clicks, CTR, video starts, completes and completion rate, net of invalid traffic " +
          "unless `traffic` says otherwise. `limit` keeps the ads with the most impressions; a rate whose base is " +
          "0 is null.",
        querystring: summaryQuerySchema(config.RETENTION_DAYS),
        ok: responses.summary,
      }),
    },
    async (request, reply) => summaryPerAd(readerFor(reply), { ...windowFilter(request), limit: request.query.limit }),
  );

  app.get(
    "/stats/ivt",
    {
      schema: schema({
        summary: "Invalid traffic per ad: gross, net and each reason",
        description:
          "Exact counts on event time over (now − N min, now], like /stats, by traffic label: in total over every ad " +
          "the query covers, and per ad; `limit` keeps the ads with the most impressions (gross).",
        querystring: ivtQuerySchema(config.RETENTION_DAYS),
        ok: responses.ivt,
      }),
    },
    async (request, reply) =>
      trafficPerAd(readerFor(reply), {
        now: Date.now(),
        minutes: request.query.timeWindowMinutes,
        ...tenantFilter(request, request.query.adId),
        limit: request.query.limit,
      }),
  );
};
