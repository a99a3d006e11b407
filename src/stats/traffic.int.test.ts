import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertImpressions, useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { buildApp } from "../api/app.ts";
import { Keyring } from "../auth/keyring.ts";
import { hashSecret } from "../auth/keys-file.ts";
import { createGate } from "../http/access-hooks.ts";
import type { Impression } from "../impression/fields.ts";
import { MINUTE_MS } from "./window.ts";

// GET /stats by traffic label and GET /stats/ivt, on every path a window reads: the raw table's edges, the rollup's
// minutes and its whole hours (the per-hour projection).

let app: FastifyInstance;
const db = useTestDatabase(() => testConfig({ AUTH: "required" }));
const TENANT_KEY = "imp_qry_tenant";
const ADMIN_KEY = "imp_qry_admin";

beforeAll(async () => {
  const now = Date.now();
  let id = 0;
  const rows: Impression[] = [];
  // Each age: 5 s (raw edge), 20 min (rollup minutes of a 90-minute window), 3 h (rollup hours of a 6-hour one).
  for (const ago of [5_000, 20 * MINUTE_MS, 180 * MINUTE_MS]) {
    const at = now - ago;
    const add = (adId: string, traffic: string | undefined, n: number) => {
      for (let i = 0; i < n; i++)
        rows.push({ id: `t-${id++}`, ts: at, userId: `u-${i}`, adId, ...(traffic && { traffic }) });
    };
    add("acme-1", "valid", 5);
    add("acme-1", undefined, 2); // unclassified: a server's event without evidence
    add("acme-1", "bot", 3);
    add("acme-1", "prefetch", 1);
    add("beta-1", "valid", 1);
    add("beta-1", "ip_range", 4);
  }
  await insertImpressions(db.clickhouse, rows);
  const keyring = new Keyring({
    version: 1,
    keys: [
      { name: "admin", scope: "query", sha256: hashSecret(ADMIN_KEY), createdAt: new Date().toISOString() },
      {
        name: "tenant",
        scope: "query",
        sha256: hashSecret(TENANT_KEY),
        createdAt: new Date().toISOString(),
        ads: ["acme-*"],
      },
    ],
  });
  const config = { ...db.config, API_ROLE: "query" as const };
  const gate = createGate(config, { current: () => keyring });
  app = await buildApp({ config, clickhouse: db.clickhouse, gate, checks: {}, logger: false });
});

afterAll(async () => {
  await app?.close();
});

const get = async (url: string, key = ADMIN_KEY) => {
  const res = await app.inject({ method: "GET", url, headers: { authorization: `Bearer ${key}` } });
  return { status: res.statusCode, body: res.json() };
};

describe("GET /stats by traffic", () => {
  it.each([
    [1, 1],
    [90, 2],
    [360, 3],
  ])("counts net by default, gross and invalid when asked, over %i minutes", async (minutes, ages) => {
    const stats = (traffic?: string) =>
      get(`/stats?timeWindowMinutes=${minutes}${traffic === undefined ? "" : `&traffic=${traffic}`}`);
    const net = { "acme-1": 7 * ages, "beta-1": 1 * ages };
    expect(await stats()).toEqual({ status: 200, body: net });
    expect((await stats("net")).body).toEqual(net);
    expect((await stats("gross")).body).toEqual({ "acme-1": 11 * ages, "beta-1": 5 * ages });
    expect((await stats("invalid")).body).toEqual({ "acme-1": 4 * ages, "beta-1": 4 * ages });
  });

  it("ranks by the count asked for", async () => {
    expect((await get("/stats?timeWindowMinutes=360&limit=1&traffic=invalid")).body).toEqual({ "acme-1": 12 });
  });

  it("counts the time series and reach by traffic too", async () => {
    const sum = (points: { impressions: number }[]) => points.reduce((total, p) => total + p.impressions, 0);
    const series = (traffic: string) => get(`/stats/timeseries?timeWindowMinutes=360&adId=beta-1&traffic=${traffic}`);
    expect(sum((await series("net")).body["beta-1"])).toBe(3);
    expect(sum((await series("gross")).body["beta-1"])).toBe(15);
    expect((await get("/stats/reach?timeWindowMinutes=10&adId=acme-1")).body).toEqual({
      "acme-1": { impressions: 7, reach: 5, frequency: 1.4 },
    });
    expect((await get("/stats/reach?timeWindowMinutes=10&adId=acme-1&traffic=gross")).body["acme-1"]).toMatchObject({
      impressions: 11,
    });
  });

  it("refuses a traffic it does not know", async () => {
    const { status, body } = await get("/stats?timeWindowMinutes=5&traffic=bots");
    expect(status).toBe(400);
    expect(body.message).toContain("traffic must be one of net, gross, invalid");
  });
});

describe("GET /stats/ivt", () => {
  const acme = (ages: number) => ({
    gross: 11 * ages,
    net: 7 * ages,
    valid: 5 * ages,
    unclassified: 2 * ages,
    invalid: 4 * ages,
    reasons: { bot: 3 * ages, prefetch: 1 * ages },
  });
  const beta = (ages: number) => ({
    gross: 5 * ages,
    net: ages,
    valid: ages,
    unclassified: 0,
    invalid: 4 * ages,
    reasons: { ip_range: 4 * ages },
  });

  it.each([
    [1, 1],
    [90, 2],
    [360, 3],
  ])("answers gross, net and each reason per ad and in total, over %i minutes", async (minutes, ages) => {
    expect(await get(`/stats/ivt?timeWindowMinutes=${minutes}`)).toEqual({
      status: 200,
      body: {
        total: {
          gross: 16 * ages,
          net: 8 * ages,
          valid: 6 * ages,
          unclassified: 2 * ages,
          invalid: 8 * ages,
          reasons: { bot: 3 * ages, prefetch: ages, ip_range: 4 * ages },
        },
        ads: { "acme-1": acme(ages), "beta-1": beta(ages) },
      },
    });
  });

  it("keeps the ads with the most impressions with limit, and totals every ad all the same", async () => {
    const { body } = await get("/stats/ivt?timeWindowMinutes=360&limit=1");
    expect(body.ads).toEqual({ "acme-1": acme(3) });
    expect(body.total.gross).toBe(48);
    expect((await get("/stats/ivt?timeWindowMinutes=360&adId=beta-1")).body).toEqual({
      total: beta(3),
      ads: { "beta-1": beta(3) },
    });
  });

  it("answers a tenant's key for its ads only, in total too, and refuses another's", async () => {
    expect((await get("/stats/ivt?timeWindowMinutes=360", TENANT_KEY)).body).toEqual({
      total: acme(3),
      ads: { "acme-1": acme(3) },
    });
    const refused = await get("/stats/ivt?timeWindowMinutes=360&adId=beta-1", TENANT_KEY);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toBe("ad_not_allowed");
  });

  it("takes no traffic parameter: it counts every label", async () => {
    const { status, body } = await get("/stats/ivt?timeWindowMinutes=5&traffic=gross");
    expect(status).toBe(400);
    expect(body.message).toContain("unknown query parameter: traffic");
  });
});
