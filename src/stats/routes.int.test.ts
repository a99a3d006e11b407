import type { ClickHouseClient } from "@clickhouse/client";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertImpressions, useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { buildApp } from "../api/app.ts";
import type { Config } from "../config.ts";
import { createClickHouse } from "../storage/clickhouse.ts";

// Two days of retention: the largest window is 2 * 1440 = 2880 minutes.
const RANGE = "from 1 to 2880";

async function queryApp(config: Config, clickhouse: ClickHouseClient): Promise<FastifyInstance> {
  return buildApp({ config: { ...config, API_ROLE: "query" }, clickhouse, checks: {}, logger: false });
}

let app: FastifyInstance;
const db = useTestDatabase(() => testConfig({ RETENTION_DAYS: "2" }));

beforeAll(async () => {
  const at = Date.now() - 5_000;
  await insertImpressions(db.clickhouse, [
    { id: "1", ts: at, adId: "r1", userId: "u1" },
    { id: "2", ts: at, adId: "r1", userId: "u1" },
    { id: "3", ts: at, adId: "r1", userId: "u2" },
    { id: "4", ts: at, adId: "r2", userId: "u1" },
    { id: "5", ts: at - 2 * 60 * 60_000, adId: "r3", userId: "u3" },
    // Viewers not identified: counted, but not in reach.
    { id: "6", ts: at, adId: "r4" },
    { id: "7", ts: at, adId: "r4" },
    // Other kinds of events of these impressions: r1's three viewable, one clicked; r4 a video started and done.
    ...["1", "2", "3"].map((id) => ({ id, ts: at, adId: "r1", userId: "u1", kind: "viewable" as const })),
    { id: "2", ts: at, adId: "r1", userId: "u1", kind: "click" },
    { id: "6", ts: at, adId: "r4", kind: "start" },
    { id: "6", ts: at, adId: "r4", kind: "complete" },
    { id: "7", ts: at, adId: "r4", kind: "start" },
  ]);
  app = await queryApp(db.config, db.clickhouse);
});

afterAll(async () => {
  await app?.close();
});

const get = async (url: string) => {
  const res = await app.inject({ method: "GET", url });
  return { status: res.statusCode, body: res.json() };
};

describe("GET /stats", () => {
  it("answers { adId: count } for the window, without ads that had no impression in it", async () => {
    expect(await get("/stats?timeWindowMinutes=60")).toEqual({ status: 200, body: { r1: 3, r2: 1, r4: 2 } });
    expect(await get("/stats?timeWindowMinutes=180")).toEqual({ status: 200, body: { r1: 3, r2: 1, r3: 1, r4: 2 } });
  });

  it("counts the kind of event asked with event=, in the same shape; impression is the default", async () => {
    expect((await get("/stats?timeWindowMinutes=60&event=impression")).body).toEqual({ r1: 3, r2: 1, r4: 2 });
    expect((await get("/stats?timeWindowMinutes=60&event=viewable")).body).toEqual({ r1: 3 });
    expect((await get("/stats?timeWindowMinutes=1&event=click")).body).toEqual({ r1: 1 });
    expect((await get("/stats?timeWindowMinutes=60&event=start&limit=1")).body).toEqual({ r4: 2 });
    expect((await get("/stats?timeWindowMinutes=60&event=thirdQuartile")).body).toEqual({});
    const series = (await get("/stats/timeseries?timeWindowMinutes=3&adId=r4&event=complete")).body;
    expect(series.r4.reduce((sum: number, p: { impressions: number }) => sum + p.impressions, 0)).toBe(1);
    const wrong = await get("/stats?timeWindowMinutes=60&event=clicks");
    expect(wrong.status).toBe(400);
    expect(wrong.body.message).toContain("event must be one of impression, viewable, click, start");
  });

  it("answers the last minute too, filtered and ranked", async () => {
    expect(await get("/stats?timeWindowMinutes=1")).toEqual({ status: 200, body: { r1: 3, r2: 1, r4: 2 } });
    expect((await get("/stats?timeWindowMinutes=1&adId=r2&adId=r3")).body).toEqual({ r2: 1 });
    expect((await get("/stats?timeWindowMinutes=1&limit=1")).body).toEqual({ r1: 3 });
  });

  it("filters by repeated adId and keeps the top N with limit", async () => {
    expect((await get("/stats?timeWindowMinutes=180&adId=r2&adId=r3")).body).toEqual({ r2: 1, r3: 1 });
    expect((await get("/stats?timeWindowMinutes=180&adId=nothing")).body).toEqual({});
    expect((await get("/stats?timeWindowMinutes=180&limit=1")).body).toEqual({ r1: 3 });
  });

  it.each([["0"], ["-1"], ["1.5"], ["abc"], [""], ["2881"], ["99999999999999999999"], ["1&timeWindowMinutes=2"]])(
    "rejects timeWindowMinutes=%s with 400 stating the allowed range",
    async (value) => {
      const { status, body } = await get(`/stats?timeWindowMinutes=${value}`);
      expect(status).toBe(400);
      expect(body.error).toBe("invalid_query");
      expect(body.message).toContain(`timeWindowMinutes must be an integer ${RANGE}`);
    },
  );

  it("rejects a missing timeWindowMinutes with 400 stating the allowed range", async () => {
    const { status, body } = await get("/stats");
    expect(status).toBe(400);
    expect(body.message).toContain(`timeWindowMinutes is required: an integer ${RANGE}`);
  });

  it("rejects a bad limit, a bad adId and an unknown parameter with 400", async () => {
    const cases = [
      ["/stats?timeWindowMinutes=5&limit=0", "limit must be an integer from 1 to 10000"],
      ["/stats?timeWindowMinutes=5&adId=a%20b", "adId must be 1-128 characters"],
      ["/stats?timewindowminutes=5", "timeWindowMinutes is required"],
      ["/stats?timeWindowMinutes=5&window=5", "unknown query parameter: window"],
    ];
    for (const [url, message] of cases) {
      const { status, body } = await get(url as string);
      expect(status, url).toBe(400);
      expect(body.message, url).toContain(message);
    }
  });
});

describe("GET /stats/timeseries", () => {
  it("lists every minute of the window for each requested ad", async () => {
    const { status, body } = await get("/stats/timeseries?timeWindowMinutes=3&adId=r1&adId=r3");
    expect(status).toBe(200);
    expect(Object.keys(body).sort()).toEqual(["r1", "r3"]);
    const total = (points: { impressions: number }[]) => points.reduce((sum, p) => sum + p.impressions, 0);
    expect(total(body.r1)).toBe(3);
    expect(total(body.r3)).toBe(0);
    // (now − 3 min, now] touches 4 minutes, or 3 when now is the last millisecond of a minute.
    expect([3, 4]).toContain(body.r1.length);
    const starts = body.r1.map((p: { minute: string }) => Date.parse(p.minute));
    expect(starts.slice(1).map((m: number, i: number) => m - (starts[i] as number))).toEqual(
      Array(starts.length - 1).fill(60_000),
    );
    expect(body.r1[0]).toEqual({ minute: expect.stringMatching(/:00\.000Z$/), impressions: expect.any(Number) });
  });

  it("requires at least one adId", async () => {
    const { status, body } = await get("/stats/timeseries?timeWindowMinutes=3");
    expect(status).toBe(400);
    expect(body.message).toContain("adId is required");
  });
});

describe("GET /stats/reach", () => {
  it("answers distinct identified users and frequency per ad; viewers not identified count in impressions only", async () => {
    expect(await get("/stats/reach?timeWindowMinutes=60")).toEqual({
      status: 200,
      body: {
        r1: { impressions: 3, reach: 2, frequency: 1.5 },
        r2: { impressions: 1, reach: 1, frequency: 1 },
        r4: { impressions: 2, reach: 0, frequency: null },
      },
    });
  });
});

describe("GET /stats/summary", () => {
  it("answers per ad impressions, viewable, clicks, video starts and completes, and their rates", async () => {
    expect(await get("/stats/summary?timeWindowMinutes=60")).toEqual({
      status: 200,
      body: {
        r1: {
          impressions: 3,
          viewable: 3,
          viewabilityRate: 1,
          clicks: 1,
          ctr: 1 / 3,
          starts: 0,
          completes: 0,
          completionRate: null,
        },
        r2: {
          impressions: 1,
          viewable: 0,
          viewabilityRate: 0,
          clicks: 0,
          ctr: 0,
          starts: 0,
          completes: 0,
          completionRate: null,
        },
        r4: {
          impressions: 2,
          viewable: 0,
          viewabilityRate: 0,
          clicks: 0,
          ctr: 0,
          starts: 2,
          completes: 1,
          completionRate: 0.5,
        },
      },
    });
    expect(Object.keys((await get("/stats/summary?timeWindowMinutes=180&limit=2")).body).sort()).toEqual(["r1", "r4"]);
    expect(Object.keys((await get("/stats/summary?timeWindowMinutes=1&adId=r2")).body)).toEqual(["r2"]);
    const wrong = await get("/stats/summary?timeWindowMinutes=60&event=click");
    expect(wrong.status).toBe(400);
    expect(wrong.body.message).toContain("unknown query parameter: event");
  });
});

describe("when ClickHouse does not answer", () => {
  it("answers 503 with a JSON error a client may retry on", async () => {
    const config = testConfig({ CLICKHOUSE_URL: "http://127.0.0.1:9" });
    const unreachable = createClickHouse(config);
    const down = await queryApp(config, unreachable);
    try {
      const res = await down.inject({ method: "GET", url: "/stats?timeWindowMinutes=5" });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ error: "clickhouse_unavailable" });
    } finally {
      await down.close();
      await unreachable.close();
    }
  });
});
