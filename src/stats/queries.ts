import { DEFAULT_KIND, DEFAULT_TRAFFIC, storedValues } from "../storage/dimensions.ts";
import type { ReadRows } from "./reader.ts";
import { MINUTE_MS, type SplitWindow, splitWindow } from "./window.ts";

export interface WindowQuery {
  /** Epoch ms, taken once per request: every part of the query sees the same window. */
  now: number;
  minutes: number;
  /** Only these ads; empty means all. */
  adIds: string[];
  /** Only ads matching one of these LIKE patterns (a tenant's key: AdScope.likePatterns); absent means all. */
  adPatterns?: readonly string[];
  /** The kind of event counted; impressions by default. */
  kind?: string;
  /** Several kinds at once, each counted apart (the summary); overrides `kind`. */
  kinds?: readonly string[];
  /** Only events with one of these traffic labels; absent counts every label (gross). */
  traffic?: readonly string[];
  /** Only events with none of these traffic labels (the invalid ones: any label but valid and unclassified). */
  excludeTraffic?: readonly string[];
}

export interface RankedQuery extends WindowQuery {
  /** Keep the top `limit` ads (most impressions, or most users for reach); undefined keeps all. */
  limit?: number;
}

export interface MinuteCount {
  /** Start of the minute, ISO 8601 UTC. */
  minute: string;
  impressions: number;
}

export interface Reach {
  impressions: number;
  /** Distinct identified users, exact. */
  reach: number;
  /** Impressions of identified users per distinct identified user; null when none was identified. */
  frequency: number | null;
}

/** What an advertiser pays for, per ad: exact counts of each kind, and the rates between them (null: no base). */
export interface Summary {
  impressions: number;
  viewable: number;
  /** viewable / impressions. */
  viewabilityRate: number | null;
  clicks: number;
  /** clicks / impressions. */
  ctr: number | null;
  /** Video ads: impressions whose video started, and those played to the end. */
  starts: number;
  completes: number;
  /** completes / starts. */
  completionRate: number | null;
}

/**
 * The rows counted: of the kind asked, with the traffic labels asked, of the given ads. The same condition serves
 * the raw table and the rollup. For all ads or all labels no condition on them (an always-true `OR` is still
 * evaluated on every row).
 */
export function rowFilter({ adIds, adPatterns = [], traffic, excludeTraffic }: WindowQuery): string {
  const kind = " AND kind IN {kinds:Array(String)}";
  const labels =
    (traffic === undefined ? "" : " AND traffic IN {traffic:Array(String)}") +
    (excludeTraffic === undefined ? "" : " AND traffic NOT IN {excludeTraffic:Array(String)}");
  const ids = adIds.length === 0 ? "" : " AND ad_id IN {adIds:Array(String)}";
  if (adPatterns.length === 0) return `${kind}${labels}${ids}`;
  return `${kind}${labels}${ids} AND (${adPatterns.map((_, i) => `ad_id LIKE {adLike${i}:String}`).join(" OR ")})`;
}
const RAW_WINDOW =
  "ts > fromUnixTimestamp64Milli({start:Int64}, 'UTC') AND ts <= fromUnixTimestamp64Milli({end:Int64}, 'UTC')";
const RAW_EDGES = `((ts > fromUnixTimestamp64Milli({start:Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({fullFrom:Int64}, 'UTC'))
      OR (ts >= fromUnixTimestamp64Milli({fullTo:Int64}, 'UTC') AND ts <= fromUnixTimestamp64Milli({end:Int64}, 'UTC')))`;
// SummingMergeTree rows of one key may not be merged yet: always sum.
const ROLLUP_MINUTES =
  "minute >= toDateTime({fullFromSeconds:UInt32}, 'UTC') AND minute < toDateTime({fullToSeconds:UInt32}, 'UTC')";
// Filtering on toStartOfHour(minute), the projection's key, is what lets ClickHouse read the projection.
const ROLLUP_HOURS =
  "toStartOfHour(minute) >= toDateTime({hourFromSeconds:UInt32}, 'UTC') AND toStartOfHour(minute) < toDateTime({hourToSeconds:UInt32}, 'UTC')";
const ROLLUP_EDGE_MINUTES = `((minute >= toDateTime({fullFromSeconds:UInt32}, 'UTC') AND minute < toDateTime({hourFromSeconds:UInt32}, 'UTC'))
      OR (minute >= toDateTime({hourToSeconds:UInt32}, 'UTC') AND minute < toDateTime({fullToSeconds:UInt32}, 'UTC')))`;

/** Implicit projections (a part's min/max/count) never serve a GROUP BY, yet ClickHouse plans them for every read. */
export const READ_SETTINGS = { optimize_use_implicit_projections: 0 } as const;

export function windowParams(window: SplitWindow, q: RankedQuery) {
  return {
    ...window,
    fullFromSeconds: window.fullFrom / 1000,
    fullToSeconds: window.fullTo / 1000,
    hourFromSeconds: window.hourFrom / 1000,
    hourToSeconds: window.hourTo / 1000,
    adIds: q.adIds,
    kinds: storedValues(q.kinds ?? [q.kind ?? DEFAULT_KIND], DEFAULT_KIND),
    ...(q.traffic === undefined ? {} : { traffic: storedValues(q.traffic, DEFAULT_TRAFFIC) }),
    ...(q.excludeTraffic === undefined ? {} : { excludeTraffic: storedValues(q.excludeTraffic, DEFAULT_TRAFFIC) }),
    ...Object.fromEntries((q.adPatterns ?? []).map((pattern, i) => [`adLike${i}`, pattern])),
    ...(q.limit === undefined ? {} : { limit: q.limit }),
  };
}

/**
 * Selects summing the window's events by `keys` (columns both tables have), as `keys…, <as>`: the raw table's edges
 * and, as the window needs them, the rollup's edge minutes and its whole hours (each table read costs a few ms even
 * when empty, so only the levels the window needs are read). Without a whole minute (N=1), the window is one range
 * of the raw table, read as the plain count would read it.
 */
export function countParts(window: SplitWindow, filter: string, keys: string, as = "n"): string[] {
  if (window.fullFrom === window.fullTo) {
    return [`SELECT ${keys}, count() AS ${as} FROM impressions WHERE ${RAW_WINDOW}${filter} GROUP BY ${keys}`];
  }
  const parts = [`SELECT ${keys}, count() AS n FROM impressions WHERE ${RAW_EDGES}${filter} GROUP BY ${keys}`];
  if (window.fullFrom < window.hourFrom || window.hourTo < window.fullTo) {
    parts.push(
      `SELECT ${keys}, sum(impressions) AS n FROM impressions_per_minute WHERE ${ROLLUP_EDGE_MINUTES}${filter} GROUP BY ${keys}`,
    );
  }
  if (window.hourFrom < window.hourTo) {
    parts.push(
      `SELECT ${keys}, sum(impressions) AS n FROM impressions_per_minute WHERE ${ROLLUP_HOURS}${filter} GROUP BY ${keys}`,
    );
  }
  return parts;
}

/**
 * How a per-ad read counts: by ad alone (`count`: one kind) or by ad and kind (`summary`: one column per kind
 * and the rates between them, the rollup's '' kind as an impression).
 */
type PerAdShape = "count" | "summary";

const SUMMARY_KINDS = ["impression", "viewable", "click", "start", "complete"] as const;
const SUMMARY_COLUMNS = `sumIf(n, kind IN ('impression', '')) AS impressions, sumIf(n, kind = 'viewable') AS viewable,
  sumIf(n, kind = 'click') AS clicks, sumIf(n, kind = 'start') AS starts, sumIf(n, kind = 'complete') AS completes`;

/**
 * A per-ad read of the window, level by level (raw edges, whole minutes, whole hours: docs/STATS.md), each
 * level's partial counts added up; ranked by impressions when `limit` is set.
 */
function perAdQuery(q: RankedQuery, shape: PerAdShape) {
  const window = splitWindow(q.now, q.minutes);
  const filter = rowFilter(q);
  const ranked = q.limit === undefined ? "" : "ORDER BY impressions DESC, ad_id LIMIT {limit:UInt32}";
  const statement = (query: string) => ({
    query,
    query_params: windowParams(window, q),
    clickhouse_settings: READ_SETTINGS,
  });
  if (shape === "summary") {
    const parts = countParts(window, filter, "ad_id, kind");
    return statement(`SELECT ad_id, ${SUMMARY_COLUMNS} FROM (${parts.join(" UNION ALL ")}) GROUP BY ad_id ${ranked}`);
  }
  // No whole minute (N=1): one part, the plain count of the raw range, as it is.
  return statement(
    window.fullFrom === window.fullTo
      ? `${countParts(window, filter, "ad_id", "impressions")[0]} ${ranked}`
      : `SELECT ad_id, sum(n) AS impressions FROM (${countParts(window, filter, "ad_id").join(" UNION ALL ")}) GROUP BY ad_id ${ranked}`,
  );
}

/** The statement behind `countPerAd`, for callers that run it themselves (the stats benchmark). */
export function countPerAdQuery(q: RankedQuery) {
  return perAdQuery(q, "count");
}

/** Events of one kind (impressions by default) per ad with ts in (now − minutes, now]; ads without any are absent. */
export async function countPerAd(read: ReadRows, q: RankedQuery): Promise<Record<string, number>> {
  const rows = await read<[string, string]>(countPerAdQuery(q));
  return Object.fromEntries(rows.map(([adId, n]) => [adId, Number(n)]));
}

/**
 * Impressions per minute for each given ad, every minute of the window listed (zeros included), oldest
 * first. The first and last minutes are partial: they count only the part inside the window, so a
 * series sums to the ad's `countPerAd` figure.
 */
export async function timeSeries(read: ReadRows, q: WindowQuery): Promise<Record<string, MinuteCount[]>> {
  const window = splitWindow(q.now, q.minutes);
  const filter = rowFilter(q);
  const rows = await read<[string, number, string]>({
    query: `SELECT ad_id, minute, sum(n) AS impressions FROM (
        SELECT ad_id, toUnixTimestamp(minute) AS minute, sum(impressions) AS n FROM impressions_per_minute
        WHERE ${ROLLUP_MINUTES}${filter} GROUP BY ad_id, minute
        UNION ALL
        SELECT ad_id, toUnixTimestamp(toStartOfMinute(ts)) AS minute, count() AS n FROM impressions
        WHERE ${RAW_EDGES}${filter} GROUP BY ad_id, minute
      ) GROUP BY ad_id, minute`,
    query_params: windowParams(window, q),
    clickhouse_settings: READ_SETTINGS,
  });
  // Up to MAX_SERIES_POINTS points: a map per ad and one label per minute, not a key string and a date per point.
  const perAd = new Map<string, Map<number, number>>();
  for (const [adId, minute, n] of rows) {
    let counts = perAd.get(adId);
    if (!counts) {
      counts = new Map();
      perAd.set(adId, counts);
    }
    counts.set(minute * 1000, Number(n));
  }
  const firstMinute = Math.floor((window.start + 1) / MINUTE_MS) * MINUTE_MS;
  const minutes: number[] = [];
  for (let m = firstMinute; m <= window.end; m += MINUTE_MS) minutes.push(m);
  const labels = minutes.map((m) => new Date(m).toISOString());
  return Object.fromEntries(
    q.adIds.map((adId) => {
      const counts = perAd.get(adId);
      return [adId, minutes.map((m, i) => ({ minute: labels[i] as string, impressions: counts?.get(m) ?? 0 }))];
    }),
  );
}

/**
 * Exact distinct identified users and impressions per ad over the window, read from the raw table. Reach and
 * frequency count identified users only: an event without a user id (stored '') is in `impressions`, not in them.
 */
export async function reachPerAd(read: ReadRows, q: RankedQuery): Promise<Record<string, Reach>> {
  const filter = rowFilter(q);
  const ranked = q.limit === undefined ? "" : "ORDER BY reach DESC, ad_id LIMIT {limit:UInt32}";
  const rows = await read<[string, string, string, string]>({
    query: `SELECT ad_id, count() AS impressions, uniqExactIf(user_id, user_id != '') AS reach,
        countIf(user_id != '') AS identified
      FROM impressions
      WHERE ${RAW_WINDOW}${filter}
      GROUP BY ad_id ${ranked}`,
    query_params: windowParams(splitWindow(q.now, q.minutes), q),
  });
  return Object.fromEntries(
    rows.map(([adId, impressions, reach, identified]) => [
      adId,
      {
        impressions: Number(impressions),
        reach: Number(reach),
        frequency: Number(reach) === 0 ? null : Number(identified) / Number(reach),
      },
    ]),
  );
}

const rate = (part: number, whole: number) => (whole === 0 ? null : part / whole);

/**
 * Per ad over the window, exact and read as /stats reads (the same levels, filters and tenant scope):
 * impressions, viewable impressions, clicks, video starts and completes, and the rates between them. `limit` keeps
 * the ads with the most impressions. Ads with no event of these kinds are absent.
 */
export async function summaryPerAd(read: ReadRows, q: RankedQuery): Promise<Record<string, Summary>> {
  const rows = await read<[string, string, string, string, string, string]>(
    perAdQuery({ ...q, kinds: SUMMARY_KINDS }, "summary"),
  );
  return Object.fromEntries(
    rows.map(([adId, ...counts]) => {
      const [impressions, viewable, clicks, starts, completes] = counts.map(Number) as [
        number,
        number,
        number,
        number,
        number,
      ];
      return [
        adId,
        {
          impressions,
          viewable,
          viewabilityRate: rate(viewable, impressions),
          clicks,
          ctr: rate(clicks, impressions),
          starts,
          completes,
          completionRate: rate(completes, starts),
        },
      ];
    }),
  );
}
