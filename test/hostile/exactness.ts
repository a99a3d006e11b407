import { createClient } from "@clickhouse/client";
import type { Config } from "../../src/config.ts";
import { readStored } from "../chaos/exactness.ts";

/** What ClickHouse holds against what the valid load sent. */
export interface Counts {
  /** Ids some 2xx acknowledged. */
  accepted: number;
  storedRows: number;
  storedDistinct: number;
  /** The per-minute rollup's total. */
  rollupTotal: number;
  /** Acknowledged ids with no row. */
  lost: number;
  /** Rows beyond one per id. */
  doubleCounted: number;
  /** Stored ids of requests that got no 2xx (a 503 or a timeout after Kafka had them): allowed, counted once. */
  unsureStored: number;
  /** Stored ids nobody sent: an attack's, or another run's. */
  strangers: number;
}

/** Reads every stored id of the app's database and compares them with the acknowledged and the unsure ids. */
export async function countStored(
  config: Config,
  accepted: ReadonlySet<string>,
  unsure: ReadonlySet<string>,
): Promise<Counts> {
  const client = createClient({
    url: config.CLICKHOUSE_URL,
    database: config.CLICKHOUSE_DATABASE,
    username: config.CLICKHOUSE_USER,
    password: config.CLICKHOUSE_PASSWORD,
    request_timeout: 60_000,
  });
  try {
    const { storedRows, storedDistinct, rollupTotal, storedIds: stored } = await readStored(client);
    let unsureStored = 0;
    let strangers = 0;
    for (const id of stored) {
      if (accepted.has(id)) continue;
      if (unsure.has(id)) unsureStored++;
      else strangers++;
    }
    return {
      accepted: accepted.size,
      storedRows,
      storedDistinct,
      rollupTotal,
      lost: [...accepted].filter((id) => !stored.has(id)).length,
      doubleCounted: storedRows - storedDistinct,
      unsureStored,
      strangers,
    };
  } finally {
    await client.close();
  }
}

/** Nothing acknowledged lost, nothing counted twice, nothing stored that was not sent, the rollup agrees. */
export function countsProblems(counts: Counts): string[] {
  const problems: string[] = [];
  if (counts.lost > 0) problems.push(`lost ${counts.lost} acknowledged events`);
  if (counts.doubleCounted > 0) problems.push(`double-counted ${counts.doubleCounted}`);
  if (counts.strangers > 0) problems.push(`${counts.strangers} stored ids that no valid request sent`);
  if (counts.rollupTotal !== counts.storedRows) {
    problems.push(`the rollup counts ${counts.rollupTotal}, the table holds ${counts.storedRows} rows`);
  }
  return problems;
}
