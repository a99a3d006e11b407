import { type ClickHouseClient, createClient } from "@clickhouse/client";

/** What ClickHouse holds against the ids the senders got a 2xx for. */
export interface Exactness {
  storedRows: number;
  storedDistinct: number;
  rollupTotal: number;
  /** Accepted ids with no row. */
  lost: number;
  /** Rows beyond one per id. */
  doubleCounted: number;
  /** Stored ids no sender got a 2xx for. */
  notAcceptedButStored: number;
}

/** What the raw table and the rollup hold: rows, distinct ids, the rollup's total and every stored id. */
export interface Stored {
  storedRows: number;
  storedDistinct: number;
  rollupTotal: number;
  storedIds: Set<string>;
}

export async function readStored(client: ClickHouseClient): Promise<Stored> {
  const totals = await client.query({
    query: `SELECT count() AS rows, uniqExact(id) AS distinct, (SELECT sum(impressions) FROM impressions_per_minute) AS rollup
        FROM impressions`,
    format: "JSONEachRow",
  });
  const [row] = await totals.json<Record<string, string>>();
  const ids = await client.query({ query: "SELECT id FROM impressions", format: "JSONCompactEachRow" });
  return {
    storedRows: Number(row?.rows),
    storedDistinct: Number(row?.distinct),
    rollupTotal: Number(row?.rollup),
    storedIds: new Set((await ids.json<[string]>()).map(([id]) => id)),
  };
}

export async function checkExactness(
  clickhouseUrl: string,
  accepted: ReadonlySet<string>,
  database = "default",
): Promise<Exactness> {
  const client = createClient({ url: clickhouseUrl, database, request_timeout: 60_000 });
  try {
    const { storedRows, storedDistinct, rollupTotal, storedIds } = await readStored(client);
    return {
      storedRows,
      storedDistinct,
      rollupTotal,
      lost: [...accepted].filter((id) => !storedIds.has(id)).length,
      doubleCounted: storedRows - storedDistinct,
      notAcceptedButStored: [...storedIds].filter((id) => !accepted.has(id)).length,
    };
  } finally {
    await client.close();
  }
}

/** Every accepted id stored once, nothing else counted, and the rollup agrees with the rows. */
export function isExact(exactness: Exactness, distinctAccepted: number): boolean {
  return (
    exactness.lost === 0 &&
    exactness.doubleCounted === 0 &&
    exactness.storedDistinct === distinctAccepted &&
    exactness.rollupTotal === exactness.storedRows
  );
}
