import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertImpressions, useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { buildApp } from "../api/app.ts";
import type { EventKind, Impression } from "../impression/fields.ts";
import { MINUTE_MS } from "./window.ts";

// The reports by kind (/stats?event=, its series and reach, /stats/summary) count net of invalid traffic by
// default, as /stats counts impressions, on every path a window reads: the raw table's edges, the rollup's minutes
// and its whole hours.

let app: FastifyInstance;
const db = useTestDatabase(() => testConfig());

/** Per kind, how many events of each traffic label (undefined: unclassified) the ad gets at each age. */
const LABELS: [EventKind, string | undefined, number][] = [
  ["impression", "valid", 4],
  ["impression", undefined, 1],
  ["impression", "bot", 2],
  ["viewable", "valid", 3],
  ["viewable", "headless", 1],
  ["click", "valid", 1],
  ["click", "activity", 2],
  ["start", "valid", 2],
  ["complete", "valid", 1],
  ["complete", "prefetch", 1],
];

beforeAll(async () => {
  const now = Date.now();
  let n = 0;
  const rows: Impression[] = [];
  // Each age: 5 s (raw edge), 20 min (rollup minutes of a 90-minute window), 3 h (rollup hours of a 6-hour one).
  for (const ago of [5_000, 20 * MINUTE_MS, 180 * MINUTE_MS]) {
    for (const [kind, traffic, count] of LABELS) {
      for (let i = 0; i < count; i++) {
        // Each event of its own impression id and user, so that reach counts every one.
        const id = `k-${n++}`;
        rows.push({ id, ts: now - ago, userId: `u-${id}`, adId: "v-1", kind, ...(traffic && { traffic }) });
      }
    }
  }
  await insertImpressions(db.clickhouse, rows);
  app = await buildApp({
    config: { ...db.config, API_ROLE: "query" },
    clickhouse: db.clickhouse,
    checks: {},
    logger: false,
  });
});

afterAll(async () => {
  await app?.close();
});

const get = async (url: string) => (await app.inject({ method: "GET", url })).json();
const windows = [
  [1, 1],
  [90, 2],
  [360, 3],
] as const;

describe("reports by kind, by traffic label", () => {
  it.each(windows)(
    "/stats?event= counts net by default, gross and invalid when asked, over %i minutes",
    async (minutes, ages) => {
      const stats = (event: string, traffic = "") =>
        get(`/stats?timeWindowMinutes=${minutes}&event=${event}${traffic}`);
      expect(await stats("click")).toEqual({ "v-1": ages });
      expect(await stats("click", "&traffic=net")).toEqual({ "v-1": ages });
      expect(await stats("click", "&traffic=gross")).toEqual({ "v-1": 3 * ages });
      expect(await stats("click", "&traffic=invalid")).toEqual({ "v-1": 2 * ages });
      expect(await stats("viewable")).toEqual({ "v-1": 3 * ages });
      expect(await stats("complete", "&traffic=gross")).toEqual({ "v-1": 2 * ages });
    },
  );

  it.each(windows)("/stats/summary counts and rates net by default, over %i minutes", async (minutes, ages) => {
    const summary = (traffic = "") => get(`/stats/summary?timeWindowMinutes=${minutes}${traffic}`);
    const net = {
      impressions: 5 * ages,
      viewable: 3 * ages,
      viewabilityRate: 3 / 5,
      clicks: ages,
      ctr: 1 / 5,
      starts: 2 * ages,
      completes: ages,
      completionRate: 1 / 2,
    };
    expect(await summary()).toEqual({ "v-1": net });
    expect(await summary("&traffic=net")).toEqual({ "v-1": net });
    expect(await summary("&traffic=gross")).toEqual({
      "v-1": {
        impressions: 7 * ages,
        viewable: 4 * ages,
        viewabilityRate: 4 / 7,
        clicks: 3 * ages,
        ctr: 3 / 7,
        starts: 2 * ages,
        completes: 2 * ages,
        completionRate: 1,
      },
    });
    expect(await summary("&traffic=invalid")).toEqual({
      "v-1": {
        impressions: 2 * ages,
        viewable: ages,
        viewabilityRate: 1 / 2,
        clicks: 2 * ages,
        ctr: 1,
        starts: 0,
        completes: ages,
        completionRate: null,
      },
    });
  });

  it("counts a kind's time series and reach by traffic too", async () => {
    const sum = (points: { impressions: number }[]) => points.reduce((total, p) => total + p.impressions, 0);
    const series = (traffic: string) =>
      get(`/stats/timeseries?timeWindowMinutes=360&adId=v-1&event=click&traffic=${traffic}`);
    expect(sum((await series("net"))["v-1"])).toBe(3);
    expect(sum((await series("gross"))["v-1"])).toBe(9);
    expect(await get("/stats/reach?timeWindowMinutes=10&event=click")).toEqual({
      "v-1": { impressions: 1, reach: 1, frequency: 1 },
    });
    expect(await get("/stats/reach?timeWindowMinutes=10&event=click&traffic=gross")).toEqual({
      "v-1": { impressions: 3, reach: 3, frequency: 1 },
    });
  });

  it("leaves /stats/ivt to impressions: it takes no event", async () => {
    expect((await get("/stats/ivt?timeWindowMinutes=10")).total).toMatchObject({ gross: 7, net: 5, invalid: 2 });
    const refused = await app.inject({ method: "GET", url: "/stats/ivt?timeWindowMinutes=10&event=click" });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).toContain("unknown query parameter: event");
  });
});
