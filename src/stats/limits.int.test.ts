import type { AddressInfo } from "node:net";
import { ClickHouseLogLevel, createClient } from "@clickhouse/client";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertImpressions, useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { waitFor } from "../../test/support/wait.ts";
import { buildApp } from "../api/app.ts";
import type { Config } from "../config.ts";
import { AppError } from "../errors.ts";
import { createQueryClickHouse } from "../storage/clickhouse.ts";
import { ONE_SERVER } from "../storage/layout.ts";
import { ensureQueryUser } from "../storage/query-user.ts";
import { createStatsReader, MAX_RESULT_ROWS, queryLimits, type StatsReader } from "./reader.ts";
import { MAX_SERIES_POINTS } from "./schemas.ts";

// The query routes' limits, against the real engine: each answers its documented error (docs/STATS.md, "Limits").
const db = useTestDatabase(() => testConfig({ API_ROLE: "query" }));
const apps: FastifyInstance[] = [];
const clients: { close(): Promise<void> }[] = [];

/** The query API as main.ts builds it (the query role's read-only client), with `overrides` over the config. */
async function queryApp(overrides: Partial<Config> = {}, statsReader?: (config: Config) => StatsReader) {
  const config = { ...db.config, ...overrides };
  const clickhouse = createQueryClickHouse(config);
  clients.push(clickhouse);
  const app = await buildApp({
    config,
    clickhouse,
    statsReader: statsReader?.(config),
    checks: {},
    logger: false,
  });
  apps.push(app);
  return app;
}

const get = async (app: FastifyInstance, url: string) => {
  const res = await app.inject({ method: "GET", url });
  return { status: res.statusCode, body: res.json(), retryAfter: res.headers["retry-after"] };
};

const now = Date.now();
beforeAll(async () => {
  // One ad more than an answer may hold, each with its own user.
  const rows = Array.from({ length: MAX_RESULT_ROWS + 1 }, (_, i) => ({
    id: `many-${i}`,
    ts: now - 10_000,
    adId: `many-${i}`,
    userId: `u-${i}`,
  }));
  for (let i = 0; i < rows.length; i += 10_000) await insertImpressions(db.clickhouse, rows.slice(i, i + 10_000));
});

afterAll(async () => {
  for (const app of apps) await app.close();
  for (const client of clients) await client.close();
});

describe("the size caps", () => {
  it("refuse a time series of more than MAX_SERIES_POINTS points with 400, saying how to narrow it", async () => {
    const app = await queryApp();
    const ads = Array.from({ length: 20 }, (_, i) => `adId=many-${i}`).join("&");
    const { status, body } = await get(app, `/stats/timeseries?timeWindowMinutes=43200&${ads}`);
    expect(status).toBe(400);
    expect(body.error).toBe("invalid_query");
    expect(body.message).toBe(
      `20 ads over 43200 minutes are 864020 points, more than ${MAX_SERIES_POINTS}: ` +
        "ask for fewer adId values or a shorter window (at most 999 minutes for 20 ads)",
    );
    const atTheCap = await get(app, `/stats/timeseries?timeWindowMinutes=999&${ads}`);
    expect(atTheCap.status).toBe(200);
    expect(Object.values(atTheCap.body).flat()).toHaveLength(20 * 1000);
  });

  it("let the dashboard's largest asks through: 24 h of the top 5, reach and /stats of the top 10", async () => {
    const app = await queryApp();
    const top5 = Array.from({ length: 5 }, (_, i) => `adId=many-${i}`).join("&");
    const top10 = Array.from({ length: 10 }, (_, i) => `adId=many-${i}`).join("&");
    for (const url of [
      `/stats/timeseries?timeWindowMinutes=1440&${top5}`,
      `/stats/reach?timeWindowMinutes=1440&${top10}`,
      "/stats?timeWindowMinutes=1440&limit=10",
    ]) {
      expect((await get(app, url)).status, url).toBe(200);
    }
  });

  it("cap reach's window at a day, as it reads every raw event of it", async () => {
    const app = await queryApp();
    const { status, body } = await get(app, "/stats/reach?timeWindowMinutes=1441");
    expect(status).toBe(400);
    expect(body.message).toBe(
      "timeWindowMinutes must be an integer from 1 to 1440 (reach reads every event of the window)",
    );
  });
});

describe("ClickHouse's limits on every query", () => {
  it("stop an answer of more than MAX_RESULT_ROWS rows with 400 query_too_large; limit narrows it", async () => {
    const app = await queryApp();
    const { status, body } = await get(app, "/stats?timeWindowMinutes=60");
    expect(status).toBe(400);
    expect(body).toEqual({
      error: "query_too_large",
      message: `the answer would hold more than ${MAX_RESULT_ROWS} rows or 16 MiB; narrow it: a shorter timeWindowMinutes, fewer adId values, or limit`,
    });
    expect((await get(app, "/stats/reach?timeWindowMinutes=60")).body.error).toBe("query_too_large");
    const top = await get(app, "/stats?timeWindowMinutes=60&limit=3");
    expect([top.status, Object.keys(top.body).length]).toEqual([200, 3]);
  });

  it("stop a query over QUERY_MAX_MEMORY_BYTES with 400 query_too_large", async () => {
    const app = await queryApp({ QUERY_MAX_MEMORY_BYTES: 1024 * 1024 });
    const { status, body } = await get(app, "/stats/reach?timeWindowMinutes=60&limit=10");
    expect(status).toBe(400);
    expect(body.error).toBe("query_too_large");
    expect(body.message).toMatch(/^the query needs more than 1 MiB of ClickHouse memory; narrow it/);
  });

  it("stop a query past QUERY_TIMEOUT_SECONDS with 503 query_timeout, to retry later", async () => {
    const config = { ...db.config, QUERY_TIMEOUT_SECONDS: 1 };
    const clickhouse = createQueryClickHouse(config);
    clients.push(clickhouse);
    const read = createStatsReader(clickhouse, queryLimits(config)).forRequest(new AbortController().signal);
    const started = Date.now();
    const slow = read({
      query: "SELECT sleepEachRow(0.25) FROM numbers(20)",
      clickhouse_settings: { max_block_size: "1" },
    });
    await expect(slow).rejects.toBeInstanceOf(AppError);
    await expect(slow).rejects.toMatchObject({ code: "query_timeout", retryAfterSeconds: 5 });
    expect(Date.now() - started).toBeLessThan(4000);
  });
});

describe("queries in flight per process", () => {
  it("past QUERY_CONCURRENCY answer 503 overloaded with Retry-After; a client that hangs up frees its slot", async () => {
    let reader: StatsReader | undefined;
    const app = await queryApp({ QUERY_CONCURRENCY: 1, QUERY_QUEUE_WAIT_MS: 300 }, (config) => {
      const clickhouse = createQueryClickHouse(config);
      clients.push(clickhouse);
      reader = createStatsReader(clickhouse, queryLimits(config));
      return reader;
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/stats?timeWindowMinutes=5&limit=1`;
    const slots = () => (reader as StatsReader).slots;

    // The dev server runs one statement at a time: this one keeps it busy for 3 s, so a query sent now stays in flight.
    const blocker = createClient({ url: db.config.CLICKHOUSE_URL, log: { level: ClickHouseLogLevel.OFF } });
    clients.push(blocker);
    const busy = blocker
      .query({ query: "SELECT sleepEachRow(0.5) FROM numbers(6)", clickhouse_settings: { max_block_size: "1" } })
      .then((r) => r.text());
    await waitFor("the engine to be busy", 10_000, async () => {
      const probe = await blocker
        .query({ query: "SELECT 1", abort_signal: AbortSignal.timeout(200) })
        .then(() => false)
        .catch(() => true);
      return probe || undefined;
    });

    const hangingUp = new AbortController();
    const first = fetch(url, { signal: hangingUp.signal }).catch((error: Error) => error.name);
    await waitFor("the first query to hold the slot", 10_000, () => slots().inFlight === 1 || undefined);

    const refused = await fetch(url);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.json()).toMatchObject({ error: "overloaded" });

    hangingUp.abort();
    expect(await first).toBe("AbortError");
    await waitFor("the slot to be freed", 1_000, () => slots().inFlight === 0 || undefined);

    const next = await fetch(url);
    expect(next.status).toBe(200);
    await busy;
  });
});

describe("the query role's ClickHouse client", () => {
  it("cannot be given a user of its own on the dev server, which has none: provisioning says so", async () => {
    const user = { name: "stats_reader", password: "secret", database: db.config.CLICKHOUSE_DATABASE };
    await expect(ensureQueryUser(db.clickhouse, ONE_SERVER, user)).rejects.toThrow(
      /^cannot create the query user stats_reader \(CLICKHOUSE_QUERY_USER\): [\s\S]*Not enough privileges[\s\S]*the dev server has no users/,
    );
  });

  it("reads, and cannot write, alter or drop", async () => {
    const client = createQueryClickHouse(db.config);
    clients.push(client);
    const stored = async () => {
      const result = await client.query({ query: "SELECT count() AS n FROM impressions", format: "JSONEachRow" });
      return Number((await result.json<{ n: number | string }>())[0]?.n);
    };
    expect(await stored()).toBe(MAX_RESULT_ROWS + 1);
    const attempts = [
      client.insert({
        table: "impressions",
        values: [{ id: "planted", ts: now, ad_id: "planted", user_id: "u" }],
        format: "JSONEachRow",
      }),
      client.command({ query: "ALTER TABLE impressions DELETE WHERE 1" }),
      client.command({ query: "TRUNCATE TABLE impressions" }),
      client.command({ query: "DROP TABLE impressions_per_minute" }),
    ];
    for (const attempt of attempts) await expect(attempt).rejects.toMatchObject({ type: "READONLY" });
    expect(await stored()).toBe(MAX_RESULT_ROWS + 1);
  });
});
