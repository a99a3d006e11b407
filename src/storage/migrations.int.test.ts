import { randomBytes } from "node:crypto";
import type { ClickHouseClient } from "@clickhouse/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../test/support/config.ts";
import { countPerAd, timeSeries } from "../stats/queries.ts";
import { plainRows } from "../stats/reader.ts";
import { MINUTE_MS } from "../stats/window.ts";
import { createClickHouse } from "./clickhouse.ts";
import { impressionRow } from "./impressions.ts";
import { migrate, migrationStatements, migrations } from "./migrations.ts";

const config = testConfig();
const database = `t_${randomBytes(6).toString("hex")}`;
const admin = createClickHouse(config);
let client: ClickHouseClient;
// Mid-minute, so the windows read raw edges, whole minutes and whole hours of the rollup.
const now = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 30 * MINUTE_MS + 23_456;
const at = (minutesAgo: number) => now - minutesAgo * MINUTE_MS - 1_000;
let next = 0;

async function insert(rows: { ts: number; adId: string; kind?: string; traffic?: string }[]) {
  await client.insert({
    table: "impressions",
    values: rows.map(({ ts, adId, ...dimensions }) => ({
      ...impressionRow({ id: `m-${next++}`, ts, userId: "u", adId }),
      ...dimensions,
    })),
    format: "JSONEachRow",
  });
}

beforeAll(async () => {
  await admin.command({ query: `CREATE DATABASE ${database}` });
  client = createClickHouse({ ...config, CLICKHOUSE_DATABASE: database });
  // A database as migrations 1 and 2 left it, holding impressions rolled up before the rollup had the new keys.
  for (const m of migrations.filter((m) => m.version <= 2)) {
    for (const query of migrationStatements(m, { retentionDays: 30 }, { kind: "one-server" })) {
      await client.command({ query });
    }
  }
  await client.insert({
    table: "impressions",
    values: [0.5, 2, 75, 200, 1300].map((ago) =>
      impressionRow({ id: `old-${ago}`, ts: at(ago), userId: "u", adId: "ad-1" }),
    ),
    format: "JSONEachRow",
  });
  await migrate(client, { retentionDays: 30 });
  await insert([
    { ts: at(0.5), adId: "ad-1" },
    { ts: at(3), adId: "ad-1", traffic: "valid" },
    { ts: at(80), adId: "ad-1", traffic: "bot" },
    { ts: at(210), adId: "ad-1", kind: "click", traffic: "valid" },
    { ts: at(1300), adId: "ad-1", kind: "click" },
  ]);
}, 60_000);

afterAll(async () => {
  await client?.close();
  await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await admin.close();
});

describe("migration 3: an event kind and a traffic label on every row, kept by the rollup", () => {
  const read = () => plainRows(client);

  it("counts the impressions rolled up before it with those after, on every path of a window", async () => {
    // 1 min: raw rows only; 90 min: raw edges and rollup minutes; 1440 min: rollup hours (the projection) too.
    expect(await countPerAd(read(), { now, minutes: 1, adIds: [] })).toEqual({ "ad-1": 2 });
    expect(await countPerAd(read(), { now, minutes: 90, adIds: [] })).toEqual({ "ad-1": 6 });
    expect(await countPerAd(read(), { now, minutes: 1440, adIds: [] })).toEqual({ "ad-1": 8 });
    const series = await timeSeries(read(), { now, minutes: 1440, adIds: ["ad-1"] });
    expect(series["ad-1"]?.reduce((sum, point) => sum + point.impressions, 0)).toBe(8);
  });

  it("counts each kind apart, and only the traffic labels asked for", async () => {
    expect(await countPerAd(read(), { now, minutes: 1440, adIds: [], kind: "click" })).toEqual({ "ad-1": 2 });
    expect(await countPerAd(read(), { now, minutes: 1440, adIds: [], traffic: ["bot"] })).toEqual({ "ad-1": 1 });
    expect(await countPerAd(read(), { now, minutes: 1440, adIds: [], traffic: ["valid"] })).toEqual({ "ad-1": 1 });
    // Rows from before the migration were never classified: unclassified, like new rows that carry no label.
    expect(await countPerAd(read(), { now, minutes: 1440, adIds: [], traffic: ["unclassified"] })).toEqual({
      "ad-1": 6,
    });
  });

  it("is recorded, and applying the migrations again changes nothing", async () => {
    expect(await migrate(client, { retentionDays: 30 })).toEqual([]);
    expect(await countPerAd(read(), { now, minutes: 1440, adIds: [] })).toEqual({ "ad-1": 8 });
  });
});

describe("migration 4: the viewer's network on every row", () => {
  it("reads '' for rows stored without one, and keeps what the worker writes", async () => {
    await client.insert({
      table: "impressions",
      values: [
        impressionRow({
          id: "net-1",
          ts: at(1),
          userId: "u",
          adId: "ad-net",
          traffic: "valid",
          ipPrefix: "203.0.113.0/24",
        }),
        impressionRow({ id: "net-2", ts: at(1), userId: "u", adId: "ad-net" }),
      ],
      format: "JSONEachRow",
    });
    const result = await client.query({
      query: "SELECT id, traffic, ip_prefix FROM impressions WHERE ad_id = 'ad-net' OR id = 'old-2' ORDER BY id",
      format: "JSONEachRow",
    });
    expect(await result.json()).toEqual([
      { id: "net-1", traffic: "valid", ip_prefix: "203.0.113.0/24" },
      { id: "net-2", traffic: "unclassified", ip_prefix: "" },
      { id: "old-2", traffic: "unclassified", ip_prefix: "" },
    ]);
  });
});
