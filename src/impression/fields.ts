/**
 * The impression's fields, in wire order. This one list drives the HTTP schemas (JSON body and pixel query),
 * the Kafka codec, the ClickHouse row and the test fixtures: adding a field starts here (docs/DESIGN.md).
 * - `identifier`: 1-128 characters of A-Z a-z 0-9 . _ : - (needs no escaping in JSON, URLs or logs).
 * - `epochMillis`: an integer, epoch milliseconds, within the retention and the allowed clock skew.
 */
export const IMPRESSION_FIELDS = [
  { name: "id", kind: "identifier", column: "id" },
  { name: "ts", kind: "epochMillis", column: "ts" },
  { name: "userId", kind: "identifier", column: "user_id" },
  { name: "adId", kind: "identifier", column: "ad_id" },
] as const;

type Field = (typeof IMPRESSION_FIELDS)[number];
interface KindTypes {
  identifier: string;
  epochMillis: number;
}

/** One impression as the API accepts it, as it travels on Kafka and as the worker stores it. */
export type Impression = { [F in Field as F["name"]]: KindTypes[F["kind"]] };

/** Its ClickHouse row: column names, times as ClickHouse DateTime64(3) text. */
export type ImpressionRow = { [F in Field as F["column"]]: string };
