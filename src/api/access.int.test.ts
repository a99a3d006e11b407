import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTestDatabase } from "../../test/support/clickhouse.ts";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { gateOver } from "../../test/support/keys.ts";
import { hashSecret, type KeysFile, newSecret } from "../auth/keys-file.ts";
import { signPixelUrl } from "../auth/pixel-signature.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { buildApp } from "./app.ts";

const suffix = randomUUID().slice(0, 8);
const topics = { ...ownTopics("auth"), KAFKA_PARTITIONS: "2" };
const config = testConfig({ ...topics, AUTH: "required" });
const createdAt = "2026-11-24T10:00:00.000Z";
const signingSecret = "c0".repeat(32);
/** A query key as `npm run keys` makes them, imp_qry_ and all: what the URL check looks for. */
const QUERY_KEY = newSecret("query");
const file: KeysFile = {
  version: 1,
  keys: [
    { name: "web", scope: "ingest", sha256: hashSecret("ing-web"), createdAt, origins: ["https://pub.example"] },
    { name: "server", scope: "ingest", sha256: hashSecret("ing-server"), createdAt },
    { name: "slow", scope: "ingest", sha256: hashSecret("ing-slow"), createdAt, rate: 2 },
    { name: "batchy", scope: "ingest", sha256: hashSecret("ing-batchy"), createdAt, rate: 2 },
    { name: "shared", scope: "ingest", sha256: hashSecret("ing-shared"), createdAt, rate: 2 },
    { name: "quarter", scope: "ingest", sha256: hashSecret("ing-quarter"), createdAt, rate: 1 },
    { name: "adserver", scope: "ingest", sha256: hashSecret("ing-signed"), createdAt, signingSecret },
    { name: "dash", scope: "query", sha256: hashSecret("qry-dash"), createdAt },
    { name: "real", scope: "query", sha256: hashSecret(QUERY_KEY), createdAt },
    { name: "poller", scope: "query", sha256: hashSecret("qry-poller"), createdAt, rate: 1 },
  ],
};
let producer: ImpressionProducer;
const db = useTestDatabase(() => config);
const apps: FastifyInstance[] = [];
let app: FastifyInstance;

async function appWith(overrides: Record<string, string> = {}) {
  const own = testConfig({
    ...topics,
    CLICKHOUSE_DATABASE: db.config.CLICKHOUSE_DATABASE,
    AUTH: "required",
    ...overrides,
  });
  const gate = gateOver(own, file);
  const built = await buildApp({ config: own, producer, clickhouse: db.clickhouse, checks: {}, gate, logger: false });
  apps.push(built);
  return built;
}

beforeAll(async () => {
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  producer = createImpressionProducer(config);
  app = await appWith();
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await producer?.close();
});

const post = (headers: Record<string, string> = {}, url = "/event", payload: unknown = makeImpression(suffix)) =>
  app.inject({
    method: "POST",
    url,
    headers: { "content-type": "application/json", ...headers },
    payload: payload as object,
  });
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const pixelUrl = (params: Record<string, string>) => {
  const { id, adId, userId } = makeImpression(suffix);
  return `/pixel.gif?${new URLSearchParams({ id, adId, userId, ...params })}`;
};

describe("keys on every route that needs them", () => {
  it("answers 401 missing_api_key with WWW-Authenticate, on ingest and query routes", async () => {
    for (const response of [
      await post(),
      await app.inject({ url: "/stats?timeWindowMinutes=5" }),
      await app.inject({ url: "/metrics" }),
    ]) {
      expect(response.statusCode).toBe(401);
      expect(response.json().error).toBe("missing_api_key");
      expect(response.headers["www-authenticate"]).toBe('Bearer realm="impressions"');
    }
  });

  it("answers 401 invalid_api_key for an unknown key", async () => {
    const response = await post(bearer("ing-nope"));
    expect(response.statusCode).toBe(401);
    expect(response.json().error).toBe("invalid_api_key");
    expect(response.headers["www-authenticate"]).toBe('Bearer realm="impressions", error="invalid_token"');
  });

  it("takes a key as Bearer, as X-API-Key, and an ingest key as ?key=", async () => {
    expect((await post(bearer("ing-server"))).statusCode).toBe(202);
    expect((await post({ "x-api-key": "ing-server" })).statusCode).toBe(202);
    expect((await post({}, "/event?key=ing-server")).statusCode).toBe(202);
    expect((await app.inject({ url: pixelUrl({ key: "ing-server" }) })).statusCode).toBe(200);
    const stats = await app.inject({ url: "/stats?timeWindowMinutes=5", headers: bearer("qry-dash") });
    expect(stats.statusCode).toBe(200);
  });

  it("answers 403 wrong_scope for an ingest key on a query route and a query key on an ingest route", async () => {
    const stats = await app.inject({ url: "/stats?timeWindowMinutes=5", headers: bearer("ing-server") });
    expect(stats.statusCode).toBe(403);
    expect(stats.json().error).toBe("wrong_scope");
    const event = await post({ "x-api-key": "qry-dash" });
    expect(event.statusCode).toBe(403);
    expect(event.json().error).toBe("wrong_scope");
  });

  it("answers 400 key_in_url for a key in the URL of a query route, or a query key in any URL", async () => {
    const stats = await app.inject({ url: "/stats?timeWindowMinutes=5&key=qry-dash" });
    expect(stats.statusCode).toBe(400);
    expect(stats.json().error).toBe("key_in_url");
    const event = await post({}, "/event?key=qry-dash");
    expect(event.statusCode).toBe(400);
    expect(event.json().error).toBe("key_in_url");
  });

  it("answers 400 key_in_url for a query key in any URL of any route, in every form, keys on or off", async () => {
    const open = await appWith({ AUTH: "off" });
    const encoded = [...Buffer.from(QUERY_KEY)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
    const urls = [
      `/metrics?key=${QUERY_KEY}&key=${QUERY_KEY}`,
      `/stats?timeWindowMinutes=5&key=${QUERY_KEY}`,
      `/stats/reach?timeWindowMinutes=5&api_key=${QUERY_KEY}`,
      `/stats/pipeline?KEY=${QUERY_KEY.toUpperCase()}`,
      `/healthz?key=${encoded}`,
      `/readyz?token=${encodeURIComponent(encoded)}`,
      `/sdk.js?k=${QUERY_KEY}`,
      `/openapi.json?key=${QUERY_KEY}`,
      `/?key=${QUERY_KEY}`,
      `/${QUERY_KEY}`,
      `/pixel.gif?${new URLSearchParams({ id: "i-1", adId: "a-1", userId: "u-1", key: QUERY_KEY })}`,
      `/event?key=${QUERY_KEY}`,
    ];
    for (const api of [app, open]) {
      for (const url of urls) {
        const response = await api.inject({ url, headers: bearer(QUERY_KEY) });
        expect([url, response.statusCode, response.json().error]).toEqual([url, 400, "key_in_url"]);
        expect(response.json().message).toContain("revoke");
      }
      const event = await api.inject({
        method: "POST",
        url: `/events?x=${QUERY_KEY}`,
        headers: { "content-type": "application/json", ...bearer("ing-server") },
        payload: [makeImpression(suffix)],
      });
      expect(event.json().error).toBe("key_in_url");
    }
  });

  it("answers 400 key_in_url for a key given twice in the URL of a query route, even with one in a header", async () => {
    for (const url of ["/metrics?key=qry-dash&key=qry-dash", "/stats?timeWindowMinutes=5&key=qry-dash&key=qry-dash"]) {
      const response = await app.inject({ url, headers: bearer("qry-dash") });
      expect([response.statusCode, response.json().error]).toEqual([400, "key_in_url"]);
    }
  });

  it("a key bound to origins: its origin is let in, another origin and none are 403 origin_not_allowed", async () => {
    expect((await post({ ...bearer("ing-web"), origin: "https://pub.example" })).statusCode).toBe(202);
    const other = await post({ ...bearer("ing-web"), origin: "https://evil.example" });
    expect(other.statusCode).toBe(403);
    expect(other.json().error).toBe("origin_not_allowed");
    expect((await post(bearer("ing-web"))).json().error).toBe("origin_not_allowed");
    const pixelFromPage = await app.inject({
      url: pixelUrl({ key: "ing-web" }),
      headers: { referer: "https://pub.example/article?x=1" },
    });
    expect(pixelFromPage.statusCode).toBe(200);
    const pixelElsewhere = await app.inject({
      url: pixelUrl({ key: "ing-web" }),
      headers: { referer: "https://evil.example/" },
    });
    expect(pixelElsewhere.json().error).toBe("origin_not_allowed");
  });

  it("keeps /healthz, /readyz and /sdk.js open", async () => {
    for (const url of ["/healthz", "/readyz", "/sdk.js"]) expect((await app.inject({ url })).statusCode).toBe(200);
  });
});

describe("signed pixels", () => {
  const signed = (overrides: Partial<Parameters<typeof signPixelUrl>[0]> = {}) => {
    const { id, adId, userId } = makeImpression(suffix);
    const url = new URL(
      signPixelUrl({ baseUrl: "http://api.test", key: "ing-signed", signingSecret, id, adId, userId, ...overrides }),
    );
    return url;
  };
  const get = (url: URL) => app.inject({ url: `${url.pathname}${url.search}` });

  it("lets a valid signed pixel in, with no origin at all", async () => {
    const response = await get(signed());
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("image/gif");
  });

  it("refuses an expired, an altered and an unsigned URL, and the signed key on /event", async () => {
    const expired = await get(signed({ expiresInSeconds: -10 }));
    expect([expired.statusCode, expired.json().error]).toEqual([403, "signature_expired"]);

    const altered = signed();
    altered.searchParams.set("adId", "another-ad");
    expect((await get(altered)).json().error).toBe("invalid_signature");
    const later = signed();
    later.searchParams.set("exp", String(Number(later.searchParams.get("exp")) + 3600));
    expect((await get(later)).json().error).toBe("invalid_signature");

    const unsigned = signed();
    unsigned.searchParams.delete("sig");
    unsigned.searchParams.delete("exp");
    const refused = await get(unsigned);
    expect([refused.statusCode, refused.json().error]).toEqual([403, "signature_required"]);

    expect((await post(bearer("ing-signed"))).json().error).toBe("signature_required");
  });

  it("refuses a genuine signed pixel whose exp is further ahead than PIXEL_MAX_EXPIRY_SECONDS", async () => {
    const farOff = await get(signed({ expiresInSeconds: 86_400 + 60 }));
    expect([farOff.statusCode, farOff.json().error]).toEqual([403, "signature_expiry_too_far"]);
    expect(farOff.json().message).toContain("86400 s");
    const strict = await appWith({ PIXEL_MAX_EXPIRY_SECONDS: "60" });
    const url = signed({ expiresInSeconds: 120 });
    expect((await strict.inject({ url: `${url.pathname}${url.search}` })).json().error).toBe(
      "signature_expiry_too_far",
    );
    expect((await get(signed({ expiresInSeconds: 86_400 - 60 }))).statusCode).toBe(200);
  });
});

describe("rate limits", () => {
  it("answers 429 rate_limited with Retry-After and RateLimit-* past the key's burst, and lets it in again after", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await post(bearer("ing-slow"))).statusCode);
    // rate 2 per second, a burst of 2 seconds' worth.
    expect(statuses).toEqual([202, 202, 202, 202, 429]);
    const refused = await post(bearer("ing-slow"));
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error).toBe("rate_limited");
    expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(refused.headers["ratelimit-limit"]).toBe("4");
    expect(refused.headers["ratelimit-remaining"]).toBe("0");
    expect(Number(refused.headers["ratelimit-reset"])).toBeGreaterThanOrEqual(1);
    await new Promise((resolve) => setTimeout(resolve, Number(refused.headers["retry-after"]) * 1000));
    const again = await post(bearer("ing-slow"));
    expect(again.statusCode).toBe(202);
    expect(again.headers["ratelimit-limit"]).toBe("4");
  });

  it("counts the events of a batch, not the requests, and refuses for good a batch larger than the bucket", async () => {
    const batch = (n: number) => Array.from({ length: n }, () => makeImpression(suffix));
    // rate 2: a bucket of 4 events. A full bucket does not let 6 in: no wait would, so it is a 413, not a 429.
    const oversize = await post(bearer("ing-batchy"), "/events", batch(6));
    expect([oversize.statusCode, oversize.json().error]).toEqual([413, "batch_over_rate_limit"]);
    expect(oversize.json().message).toContain('more than key "batchy" may send at once: at most 4 per request');
    expect(oversize.json().details).toEqual({ largestBatch: 4 });
    expect(oversize.headers["retry-after"]).toBeUndefined();
    expect((await post(bearer("ing-batchy"), "/events", batch(4))).statusCode).toBe(202);
    const next = await post(bearer("ing-batchy"), "/events", batch(1));
    expect(next.statusCode).toBe(429);
    expect(Number(next.headers["retry-after"])).toBe(1);
  });

  it("checks the key's and the client IP's buckets before spending either: the IP's refusal leaves the key's as it was", async () => {
    const both = await appWith({ INGEST_RATE_PER_IP: "1" });
    const send = (remoteAddress: string) =>
      both
        .inject({
          method: "POST",
          url: "/event",
          remoteAddress,
          headers: { "content-type": "application/json", ...bearer("ing-shared") },
          payload: makeImpression(suffix),
        })
        .then((r) => r.statusCode);
    // The IP's bucket holds 2, the key's 4: the third from one IP is the IP's refusal, and costs the key nothing.
    expect([await send("127.0.0.5"), await send("127.0.0.5"), await send("127.0.0.5")]).toEqual([202, 202, 429]);
    expect([await send("127.0.0.6"), await send("127.0.0.6"), await send("127.0.0.7")]).toEqual([202, 202, 429]);
  });

  it("gives each process its share of a key's rate, fractional: 1/s over 4 processes is one event per 4 s here", async () => {
    const quarter = await appWith({ API_INSTANCES: "4" });
    const send = () =>
      quarter.inject({
        method: "POST",
        url: "/event",
        headers: { "content-type": "application/json", ...bearer("ing-quarter") },
        payload: makeImpression(suffix),
      });
    expect((await send()).statusCode).toBe(202);
    const refused = await send();
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers["retry-after"])).toBe(4);
  });

  it("limits each client IP with INGEST_RATE_PER_IP, even while the API runs open", async () => {
    const open = await appWith({ AUTH: "off", INGEST_RATE_PER_IP: "1" });
    const send = () =>
      open.inject({
        method: "POST",
        url: "/event",
        headers: { "content-type": "application/json" },
        payload: makeImpression(suffix),
      });
    expect([(await send()).statusCode, (await send()).statusCode, (await send()).statusCode]).toEqual([202, 202, 429]);
    const fromElsewhere = await open.inject({
      method: "POST",
      url: "/event",
      remoteAddress: "127.0.0.2",
      headers: { "content-type": "application/json" },
      payload: makeImpression(suffix),
    });
    expect(fromElsewhere.statusCode).toBe(202);
  });

  it("limits IPv6 clients per /64, and an IPv4-mapped address as its IPv4 address", async () => {
    const open = await appWith({ AUTH: "off", INGEST_RATE_PER_IP: "1" });
    const from = (remoteAddress: string) =>
      open
        .inject({
          method: "POST",
          url: "/event",
          remoteAddress,
          headers: { "content-type": "application/json" },
          payload: makeImpression(suffix),
        })
        .then((r) => r.statusCode);
    expect([await from("2001:db8:7:1::1"), await from("2001:db8:7:1::2"), await from("2001:db8:7:1:a:b:c:d")]).toEqual([
      202, 202, 429,
    ]);
    expect(await from("2001:db8:7:2::1")).toBe(202);
    expect([await from("::ffff:127.0.0.9"), await from("127.0.0.9"), await from("::ffff:127.0.0.9")]).toEqual([
      202, 202, 429,
    ]);
  });

  it("limits query routes in requests per second: per query key (its rate, else QUERY_RATE_PER_KEY), per IP with AUTH=off", async () => {
    const limited = await appWith({ QUERY_RATE_PER_KEY: "1" });
    const read = (api: FastifyInstance, key?: string, remoteAddress?: string) =>
      api
        .inject({
          url: "/stats?timeWindowMinutes=5",
          ...(remoteAddress && { remoteAddress }),
          headers: key ? bearer(key) : {},
        })
        .then((r) => r.statusCode);
    // The default: 1 request/s, a bucket of 2, shared by /stats*, /metrics and every client of the key.
    expect([await read(limited, "qry-dash"), await read(limited, "qry-dash", "127.0.0.8")]).toEqual([200, 200]);
    const refused = await limited.inject({ url: "/stats/pipeline", headers: bearer("qry-dash") });
    expect([refused.statusCode, refused.json().error]).toEqual([429, "rate_limited"]);
    expect(refused.json().message).toContain('key "dash"');
    expect(Number(refused.headers["retry-after"])).toBe(1);
    expect(await read(limited, "qry-poller")).toBe(200);

    const open = await appWith({ AUTH: "off", QUERY_RATE_PER_IP: "1" });
    expect([await read(open), await read(open), await read(open)]).toEqual([200, 200, 429]);
    expect(await read(open, undefined, "127.0.0.10")).toBe(200);
    const unlimited = await appWith({ AUTH: "off", QUERY_RATE_PER_IP: "0" });
    for (let i = 0; i < 5; i++) expect(await read(unlimited)).toBe(200);
  });
});
