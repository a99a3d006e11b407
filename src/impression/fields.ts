/**
 * The impression's fields, in wire order. This one list drives the HTTP schemas (JSON body and pixel query),
 * the Kafka codec, the ClickHouse row and the test fixtures: adding a field starts here (docs/DESIGN.md).
 * - `identifier`: 1-128 characters of A-Z a-z 0-9 . _ : - (needs no escaping in JSON, URLs or logs).
 * - `epochMillis`: an integer, epoch milliseconds, within the retention and the allowed clock skew.
 * - `eventKind`: one of EVENT_KINDS.
 * - `trafficLabel`: `valid`, `unclassified` or the reason the event is invalid traffic (src/traffic/labels.ts).
 * - `ipPrefix`: the viewer's network, never its address: `a.b.c.0/24` or an IPv6 `/48` (src/ip-address.ts).
 *
 * `setBy`: a `sender` field comes in the HTTP request; an `api` field is written by the API from what it knows
 * of the viewer (never taken from a sender) and is optional on the wire: a message without it, from an API of
 * before, is unclassified and has no network. An `optional` sender field may be left out, on HTTP and on the wire;
 * its row then holds `stored`.
 */
export const IMPRESSION_FIELDS = [
  { name: "id", kind: "identifier", column: "id", setBy: "sender" },
  { name: "ts", kind: "epochMillis", column: "ts", setBy: "sender" },
  { name: "userId", kind: "identifier", column: "user_id", setBy: "sender", optional: true, stored: "" },
  { name: "adId", kind: "identifier", column: "ad_id", setBy: "sender" },
  { name: "kind", kind: "eventKind", column: "kind", setBy: "sender", optional: true, stored: "impression" },
  { name: "traffic", kind: "trafficLabel", column: "traffic", setBy: "api" },
  { name: "ipPrefix", kind: "ipPrefix", column: "ip_prefix", setBy: "api" },
] as const;

/** The fields a sender sends, in wire order. */
export const SENDER_FIELDS = IMPRESSION_FIELDS.filter((f) => f.setBy === "sender");

/**
 * What an HTTP sender may also say of the viewer, as evidence for classifying the traffic (docs/STATS.md). They
 * decide the `api` fields and are never written to the wire themselves.
 * - `userAgent`: the viewer's User-Agent, 1-1024 characters (a server reporting for the viewer).
 * - `ip`: the viewer's IPv4 or IPv6 address (a server reporting for the viewer).
 * - `webdriver`: true when the page's `navigator.webdriver` is (the tag reports it).
 */
export const VIEWER_FIELDS = [
  { name: "userAgent", kind: "userAgent" },
  { name: "ip", kind: "ipAddress" },
  { name: "webdriver", kind: "flag" },
] as const;

/**
 * What an event records of its impression (the Open Measurement SDK's and VAST's names): `impression` (it began
 * to render), `viewable` (the MRC's rule), `click`, and a video's progress. Each is counted once per impression
 * id: a second `viewable` of one impression is a duplicate.
 */
export const EVENT_KINDS = [
  "impression",
  "viewable",
  "click",
  "start",
  "firstQuartile",
  "midpoint",
  "thirdQuartile",
  "complete",
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];
/** The kind of an event that names none: every event sent before kinds existed. */
export const DEFAULT_EVENT_KIND: EventKind = "impression";

type Field = (typeof IMPRESSION_FIELDS)[number];
/** Fields an event may lack: the sender's optional ones and the API's own. */
type OptionalField = Extract<Field, { optional: true }> | Extract<Field, { setBy: "api" }>;
type RequiredField = Exclude<Field, OptionalField>;
type ApiField = Extract<Field, { setBy: "api" }>;
interface KindTypes {
  identifier: string;
  epochMillis: number;
  eventKind: EventKind;
  trafficLabel: string;
  ipPrefix: string;
  userAgent: string;
  ipAddress: string;
  flag: boolean;
}

/**
 * One event as it travels on Kafka and as the worker stores it. Without `kind` it is an impression; without
 * `userId` its viewer is not identified (no consent, say); the `api` fields may be absent.
 */
export type Impression = { [F in RequiredField as F["name"]]: KindTypes[F["kind"]] } & {
  [F in OptionalField as F["name"]]?: KindTypes[F["kind"]];
};

/** What an HTTP sender may say of the viewer besides the impression (VIEWER_FIELDS), each optional. */
export type ViewerEvidence = { [F in (typeof VIEWER_FIELDS)[number] as F["name"]]?: KindTypes[F["kind"]] };

/** What the API writes into an impression's `api` fields (absent: unclassified, no network). */
export type Stamp = Pick<Impression, ApiField["name"]>;

/**
 * Its ClickHouse row: column names, times as ClickHouse DateTime64(3) text; an absent `api` field takes the
 * column's default.
 */
export type ImpressionRow = { [F in Exclude<Field, ApiField> as F["column"]]: string } & {
  [F in ApiField as F["column"]]?: string;
};

/**
 * What one event is deduplicated by: its kind and its impression id. An impression's is its id alone (the
 * claims of impressions keep the key they had before kinds); another kind's is `<kind>|<id>`, and `|` never
 * occurs in an id, so no two events share one unless they share both.
 */
export function dedupKey(event: { id: string; kind?: EventKind | undefined }): string {
  const kind = event.kind;
  return kind === undefined || kind === DEFAULT_EVENT_KIND ? event.id : `${kind}|${event.id}`;
}
