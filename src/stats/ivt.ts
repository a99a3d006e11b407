import { DEFAULT_TRAFFIC } from "../storage/dimensions.ts";
import { isInvalid, UNCLASSIFIED, VALID } from "../traffic/labels.ts";
import { countParts, type RankedQuery, READ_SETTINGS, rowFilter, windowParams } from "./queries.ts";
import type { ReadRows } from "./reader.ts";
import { splitWindow } from "./window.ts";

/** One ad's (or every ad's) impressions of a window by traffic label. */
export interface TrafficBreakdown {
  /** Every impression counted once, whatever its label. */
  gross: number;
  /** valid + unclassified: what GET /stats counts by default. */
  net: number;
  valid: number;
  unclassified: number;
  /** The sum of `reasons`. */
  invalid: number;
  /** Invalid impressions by the reason they got; reasons without any are absent. */
  reasons: Record<string, number>;
}

export interface TrafficReport {
  /** Over every ad the request may read (and its adId filter), whatever `limit`. */
  total: TrafficBreakdown;
  /** Per ad; with `limit`, the ads with the most impressions (gross; ties: smaller ad id first). */
  ads: Record<string, TrafficBreakdown>;
}

function breakdown(): TrafficBreakdown {
  return { gross: 0, net: 0, valid: 0, unclassified: 0, invalid: 0, reasons: {} };
}

function add(into: TrafficBreakdown, label: string, n: number): void {
  // The rollup's rows of before migration 3 hold '': unclassified (src/storage/dimensions.ts).
  const known = label === "" ? DEFAULT_TRAFFIC : label;
  into.gross += n;
  if (known === VALID) into.valid += n;
  else if (known === UNCLASSIFIED) into.unclassified += n;
  if (!isInvalid(known)) {
    into.net += n;
    return;
  }
  into.invalid += n;
  into.reasons[known] = (into.reasons[known] ?? 0) + n;
}

/** Per ad and label; with a limit, only the rows of the top ads by gross count (ranked in ClickHouse). */
export function trafficPerAdQuery(q: RankedQuery) {
  const window = splitWindow(q.now, q.minutes);
  const union = countParts(window, rowFilter(q), "ad_id, traffic").join(" UNION ALL ");
  const perLabel = `SELECT ad_id, traffic, sum(n) AS impressions FROM (${union}) GROUP BY ad_id, traffic`;
  const query =
    q.limit === undefined
      ? perLabel
      : `SELECT ad_id, traffic, impressions FROM (
          SELECT ad_id, traffic, impressions, dense_rank() OVER (ORDER BY gross DESC, ad_id) AS ad_rank FROM (
            SELECT ad_id, traffic, sum(n) AS impressions, sum(sum(n)) OVER (PARTITION BY ad_id) AS gross
            FROM (${union}) GROUP BY ad_id, traffic))
        WHERE ad_rank <= {limit:UInt32} ORDER BY ad_rank, traffic`;
  return { query, query_params: windowParams(window, q), clickhouse_settings: READ_SETTINGS };
}

/** Per label over every ad of the query. */
export function trafficTotalQuery(q: RankedQuery) {
  const window = splitWindow(q.now, q.minutes);
  const union = countParts(window, rowFilter(q), "traffic").join(" UNION ALL ");
  return {
    query: `SELECT traffic, sum(n) AS impressions FROM (${union}) GROUP BY traffic`,
    query_params: windowParams(window, { ...q, limit: undefined }),
    clickhouse_settings: READ_SETTINGS,
  };
}

/** GET /stats/ivt: gross, net and invalid impressions by reason, in total and per ad, exact like /stats. */
export async function trafficPerAd(read: ReadRows, q: RankedQuery): Promise<TrafficReport> {
  // Every label: the breakdown is of the gross count.
  const gross = { ...q, traffic: undefined, excludeTraffic: undefined };
  const [perAd, totals] = await Promise.all([
    read<[string, string, string]>(trafficPerAdQuery(gross)),
    read<[string, string]>(trafficTotalQuery(gross)),
  ]);
  const total = breakdown();
  for (const [label, n] of totals) add(total, label, Number(n));
  const ads: Record<string, TrafficBreakdown> = {};
  for (const [adId, label, n] of perAd) {
    ads[adId] ??= breakdown();
    add(ads[adId], label, Number(n));
  }
  return { total, ads };
}
