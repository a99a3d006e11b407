import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { Keyring } from "../auth/keyring.ts";
import { hashSecret, type KeysFile } from "../auth/keys-file.ts";
import { signPixelUrl } from "../auth/pixel-signature.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";
import { buildApp } from "./app.ts";
import { createGate } from "./auth.ts";

const suffix = randomUUID().slice(0, 8);
const topics = { KAFKA_TOPIC: `auth-${suffix}`, KAFKA_DLQ_TOPIC: `auth-${suffix}.dlq`, KAFKA_PARTITIONS: "2" };
const config = testConfig({ ...topics, AUTH: "auto" });
const createdAt = "2026-11-24T10:00:00.000Z";
const signingSecret = "c0".repeat(32);
const file: KeysFile = {
  version: 1,
  keys: [
    { name: "web", scope: "ingest", sha256: hashSecret("ing-web"), createdAt, origins: ["https://pub.example"] },
    { name: "server", scope: "ingest", sha256: hashSecret("ing-server"), createdAt },
    { name: "slow", scope: "ingest", sha256: hashSecret("ing-slow"), createdAt, rate: 2 },
    { name: "batchy", scope: "ingest", sha256: hashSecret("ing-batchy"), createdAt, rate: 2 },
    { name: "adserver", scope: "ingest", sha256: hashSecret("ing-signed"), createdAt, signingSecret },
    { name: "dash", scope: "query", sha256: hashSecret("qry-dash"), createdAt },
  ],
};
let producer: ImpressionProducer;
const db = useTestDatabase(() => config);
const apps: FastifyInstance[] = [];
let app: FastifyInstance;

async function appWith(overrides: Record<string, string> = {}) {
  const own = testConfig({ ...topics, CLICKHOUSE_DATABASE: db.config.CLICKHOUSE_DATABASE, AUTH: "auto", ...overrides });
  const keyring = new Keyring(file);
  const built = await buildApp({
    config: own,
    producer,
    clickhouse: db.clickhouse,
    checks: {},
    gate: createGate(own, { current: () => keyring }),
    logger: false,
  });
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

  it("counts the events of a batch, not the requests", async () => {
    const batch = Array.from({ length: 6 }, () => makeImpression(suffix));
    expect((await post(bearer("ing-batchy"), "/events", batch)).statusCode).toBe(202);
    const next = await post(bearer("ing-batchy"), "/events", [makeImpression(suffix)]);
    expect(next.statusCode).toBe(429);
    expect(Number(next.headers["retry-after"])).toBeGreaterThanOrEqual(2);
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
});
