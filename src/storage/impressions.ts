import { createHash } from "node:crypto";
import type { ClickHouseClient, ClickHouseSettings } from "@clickhouse/client";
import {
  DEFAULT_EVENT_KIND,
  dedupKey,
  IMPRESSION_FIELDS,
  type Impression,
  type ImpressionRow,
} from "../impression/fields.ts";
import { everyCopyOf, ONE_SERVER, type StorageLayout } from "./layout.ts";

/** Events per existence query; at most 150 bytes each in the query text, hence the raised max_query_size. */
const LOOKUP_CHUNK = 5_000;
const LOOKUP_MAX_QUERY_BYTES = 1_000_000;

/** DateTime64(3) text ClickHouse parses in any date_time_input_format: `YYYY-MM-DD hh:mm:ss.sss`. */
function clickhouseTime(ts: number): string {
  return new Date(ts).toISOString().slice(0, 23).replace("T", " ");
}

/**
 * The raw table's row of an event: each field under its column, as the field list says; an optional field left
 * out as what the list says it stores (`user_id` '' for a viewer not identified, `kind` impression); a field of the
 * API's own the message did not carry (from an older API) is left out, and its column takes its default.
 */
export function impressionRow(event: Impression): ImpressionRow {
  const row: Record<string, string> = {};
  for (const f of IMPRESSION_FIELDS) {
    const value = event[f.name];
    if (value === undefined) {
      if ("stored" in f) row[f.column] = f.stored;
      continue;
    }
    row[f.column] = f.kind === "epochMillis" ? clickhouseTime(value as number) : (value as string);
  }
  return row as ImpressionRow;
}

function stringLiteral(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/**
 * Same rows in the same order give the same token: a retried insert is dropped by ClickHouse. Each row is named
 * by its kind and id (`dedupKey`), so a batch of one impression's `viewable` is not taken for a retry of a batch
 * of its `impression`; a batch of impressions only keeps the token it had before kinds existed.
 */
export function deduplicationToken(events: readonly Impression[]): string {
  const hash = createHash("sha256");
  for (const event of events) hash.update(dedupKey(event)).update("\n");
  return hash.digest("hex");
}

/**
 * How a retry of the batch is recognised. One server: the token names the batch's block. A cluster: the
 * Distributed table splits the batch by shard and sends each shard its share with the query's settings, so a
 * token would name the whole batch on every shard; a retry of only the shares whose first attempt did not show
 * (the lookup drops the rows it finds) would carry another token, and a share that landed late would count
 * twice. Without a token each shard deduplicates its share by its content, which a retry reproduces exactly.
 * The insert returns once every shard has its share (foreground) on a majority of its replicas (quorum).
 */
function retrySettings(layout: StorageLayout, events: readonly Impression[]): ClickHouseSettings {
  if (layout.kind === "one-server") return { insert_deduplication_token: deduplicationToken(events) };
  return { distributed_foreground_insert: 1, insert_quorum: "auto" };
}

/**
 * One INSERT of the raw rows; the materialized view fills the per-minute rollup. A retry of the same rows is a
 * no-op in the raw table; the block still reaches the view, whose target's own dedup window drops it there
 * (deduplicate_blocks_in_dependent_materialized_views).
 */
export async function storeImpressions(
  client: ClickHouseClient,
  events: readonly Impression[],
  options: { timeoutMs: number },
  layout: StorageLayout = ONE_SERVER,
): Promise<void> {
  if (events.length === 0) return;
  await client.insert({
    table: "impressions",
    values: events.map(impressionRow),
    format: "JSONEachRow",
    abort_signal: AbortSignal.timeout(options.timeoutMs),
    clickhouse_settings: {
      // The worker batches already; a synchronous insert keeps one batch = one block, which is what the
      // token deduplicates (ClickHouse 26 turns async_insert on by default).
      async_insert: 0,
      insert_deduplicate: 1,
      deduplicate_blocks_in_dependent_materialized_views: 1,
      ...retrySettings(layout, events),
    },
  });
}

/** What a lookup found, by `dedupKey` (kind and id), and how many rows ClickHouse read for it (its cost). */
export interface StoredIds {
  ids: Set<string>;
  readRows: number;
}

/**
 * Which of these events the raw table already holds, on any replica in a cluster: a row with the event's kind, id
 * and very ts (a replayed message's row was stored from the same bytes), answered as their `dedupKey`s. Rows
 * stored before kinds existed read as impressions (the column's default). The table is ordered by ts, so matching
 * (ts, id) pairs lets ClickHouse read only the granules whose ts range holds one of the events: whatever the
 * spread of the events' ts, a month-old event among fresh ones costs a granule of its own, where a range from the
 * oldest ts to the newest would read every partition between them. `timeoutMs` aborts the whole lookup.
 */
export async function findStoredIds(
  client: ClickHouseClient,
  events: readonly Impression[],
  options: { layout?: StorageLayout; timeoutMs?: number } = {},
): Promise<StoredIds> {
  const layout = options.layout ?? ONE_SERVER;
  const abort_signal = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
  const stored: StoredIds = { ids: new Set(), readRows: 0 };
  for (let start = 0; start < events.length; start += LOOKUP_CHUNK) {
    // The pairs go in the query text (the POST body), not in query parameters (the URL): thousands of them
    // would exceed HTTP servers' URL limits. ts is a validated integer, the kind and the id quoted literals.
    const triples = events
      .slice(start, start + LOOKUP_CHUNK)
      .map((e) => `(${e.ts},${stringLiteral(e.kind ?? DEFAULT_EVENT_KIND)},${stringLiteral(e.id)})`)
      .join(",");
    const result = await client.query({
      query: `SELECT DISTINCT kind, id FROM ${everyCopyOf(layout, "impressions")}
        WHERE (toUnixTimestamp64Milli(ts), kind, id) IN (${triples})`,
      clickhouse_settings: { max_query_size: String(LOOKUP_MAX_QUERY_BYTES) },
      // JSONCompact, not ...EachRow: its statistics say how many rows were read.
      format: "JSONCompact",
      abort_signal,
    });
    const { data, statistics } = await result.json<[Impression["kind"], string]>();
    for (const [kind, id] of data) stored.ids.add(dedupKey({ id, kind }));
    stored.readRows += Number(statistics?.rows_read ?? 0);
  }
  return stored;
}
