import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { readTopic } from "../../test/support/kafka.ts";
import { gateOver } from "../../test/support/keys.ts";
import { buildApp } from "../api/app.ts";
import { hashSecret, type KeysFile } from "../auth/keys-file.ts";
import { signClickUrl } from "../auth/pixel-signature.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";

// GET /click against a real Kafka: a redirect only to where the key allows, never an open one; each refusal is the
// usual JSON error and sends nothing to the topic.

const suffix = randomUUID().slice(0, 8);
const topics = { ...ownTopics("click"), KAFKA_PARTITIONS: "2" };
const createdAt = "2026-11-24T10:00:00.000Z";
const signingSecret = "c1".repeat(32);
const file: KeysFile = {
  version: 1,
  keys: [
    {
      name: "publisher",
      scope: "ingest",
      sha256: hashSecret("ing-publisher"),
      createdAt,
      origins: ["https://pub.example"],
      clickDomains: ["shop.example", "*.cdn.example"],
    },
    { name: "plain", scope: "ingest", sha256: hashSecret("ing-plain"), createdAt },
    { name: "adserver", scope: "ingest", sha256: hashSecret("ing-adserver"), createdAt, signingSecret },
    {
      name: "slow",
      scope: "ingest",
      sha256: hashSecret("ing-slow"),
      createdAt,
      rate: 1,
      clickDomains: ["shop.example"],
    },
  ],
};
const apps: FastifyInstance[] = [];
let producer: ImpressionProducer;
let keyed: FastifyInstance;
let open: FastifyInstance;

async function appWith(overrides: Record<string, string>) {
  const config = testConfig({ ...topics, API_ROLE: "ingest", CLICK_DOMAINS: "every.example", ...overrides });
  const app = await buildApp({ config, producer, checks: {}, gate: gateOver(config, file), logger: false });
  apps.push(app);
  return app;
}

beforeAll(async () => {
  const config = testConfig(topics);
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  producer = createImpressionProducer(config);
  keyed = await appWith({ AUTH: "required" });
  open = await appWith({ AUTH: "off" });
});
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await producer?.close();
});

/** The ids of the clicks this file expects on the topic: every one it sent that was let in. */
const accepted: string[] = [];
/** The clicks sent with the rate-limited key: only those within its bucket reach the topic. */
const slow: string[] = [];
let made = 0;
const newId = () => `clk-${suffix}-${++made}`;
const REFERER = { referer: "https://pub.example/article" };
const DESKTOP_CHROME =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
/** Clicks sent with a person's browser's headers, and with a bot's. */
const humanClicks: string[] = [];
const botClicks: string[] = [];

function click(app: FastifyInstance, params: Record<string, string>, headers: Record<string, string> = REFERER) {
  return app.inject({ url: `/click?${new URLSearchParams(params)}`, headers });
}
const withKey = (url: string, extra: Record<string, string> = {}) => ({
  id: newId(),
  adId: "ad-7",
  url,
  key: "ing-publisher",
  ...extra,
});

describe("GET /click", () => {
  it("counts the click and sends the person on with a 302 to an allowed destination, never cached", async () => {
    const params = withKey("https://shop.example/p?sku=1&utm=a#top", { userId: "u-1" });
    const response = await click(keyed, params);
    expect(response.statusCode).toBe(302);
    expect(response.headers.location).toBe("https://shop.example/p?sku=1&utm=a#top");
    expect(response.headers["cache-control"]).toBe("no-store, no-cache, must-revalidate, max-age=0");
    expect(response.body).toBe("");
    accepted.push(params.id);

    // A subdomain of *.cdn.example, CLICK_DOMAINS (every key), a viewer not identified, cachebusters.
    for (const url of ["https://a.b.cdn.example/x", "http://every.example/"]) {
      const more = withKey(url, { cb: "12345678", ord: "987", t: "2026-12-01T10:30:15.250Z" });
      const answer = await click(keyed, more);
      expect(answer.statusCode, url).toBe(302);
      expect(answer.headers.location).toBe(url);
      accepted.push(more.id);
    }
  });

  it("sends a repeat click of one impression on too (the worker drops it as a duplicate)", async () => {
    const params = withKey("https://shop.example/");
    expect((await click(keyed, params)).statusCode).toBe(302);
    expect((await click(keyed, params)).statusCode).toBe(302);
    accepted.push(params.id, params.id);
  });

  it.each([
    ["a foreign host", "https://evil.example/", 403, "destination_not_allowed"],
    ["a host that ends like an allowed one", "https://shop.example.evil.example/", 403, "destination_not_allowed"],
    ["a host that only contains one", "https://evilshop.example/", 403, "destination_not_allowed"],
    ["the apex of a *. pattern", "https://cdn.example/", 403, "destination_not_allowed"],
    ["a fragment that names an allowed host", "https://evil.example#.shop.example", 403, "destination_not_allowed"],
    ["javascript:", "javascript:alert(document.cookie)", 400, "invalid_destination"],
    ["javascript: in mixed case, split by a tab", "JaVa\tScript:alert(1)", 400, "invalid_destination"],
    ["a data: URL", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", 400, "invalid_destination"],
    ["a protocol-relative //evil", "//evil.example/", 400, "invalid_destination"],
    ["a backslashed \\\\evil", "\\\\evil.example/", 400, "invalid_destination"],
    ["https: without slashes", "https:evil.example", 400, "invalid_destination"],
    ["user info that hides the host", "https://shop.example@evil.example/", 400, "invalid_destination"],
    ["a backslash before @", "https://shop.example\\@evil.example/", 400, "invalid_destination"],
    ["a relative path", "/landing", 400, "invalid_destination"],
    ["a bare host", "shop.example", 400, "invalid_destination"],
    ["ftp:", "ftp://shop.example/", 400, "invalid_destination"],
  ])("refuses %s with the usual JSON error", async (_, url, status, error) => {
    const response = await click(keyed, withKey(url));
    expect(response.statusCode).toBe(status);
    expect(response.headers.location).toBeUndefined();
    expect(response.json()).toMatchObject({ error, message: expect.any(String) });
  });

  it("refuses encoded forms: the destination is decoded once, as the query string, and then checked", async () => {
    const cases: [string, number, string][] = [
      ["https%3A%2F%2Fevil.example%2F", 403, "destination_not_allowed"],
      ["%2F%2Fevil.example", 400, "invalid_destination"],
      ["https%253A%252F%252Fevil.example", 400, "invalid_destination"],
      ["javascript%3Aalert(1)", 400, "invalid_destination"],
      ["%6A%61%76%61%73%63%72%69%70%74:alert(1)", 400, "invalid_destination"],
      ["https://shop.example%40evil.example/", 400, "invalid_destination"],
      ["https://evil.example%23.shop.example", 403, "destination_not_allowed"],
      ["https://evil.example%2F.shop.example", 403, "destination_not_allowed"],
      ["https://%65vil.example/", 403, "destination_not_allowed"],
      ["https://sh%D0%BEp.example/", 403, "destination_not_allowed"],
    ];
    for (const [raw, status, error] of cases) {
      const response = await keyed.inject({
        url: `/click?id=${newId()}&adId=ad-7&key=ing-publisher&url=${raw}`,
        headers: REFERER,
      });
      expect({ raw, status: response.statusCode, error: response.json().error }).toEqual({ raw, status, error });
    }
  });

  it("refuses a destination the key does not allow though another key allows it, and a key without any", async () => {
    const plain = await click(keyed, withKey("https://shop.example/", { key: "ing-plain" }), {});
    expect(plain.statusCode).toBe(403);
    expect(plain.json()).toMatchObject({ error: "destination_not_allowed", message: expect.stringContaining("plain") });
    const everyKey = withKey("https://every.example/", { key: "ing-plain" });
    expect((await click(keyed, everyKey, {})).statusCode).toBe(302);
    accepted.push(everyKey.id);
  });

  it("keeps the key's origins: another page's link is refused", async () => {
    const response = await click(keyed, withKey("https://shop.example/"), { referer: "https://other.example/" });
    expect(response.statusCode).toBe(403);
    expect(response.json().error).toBe("origin_not_allowed");
  });

  it("takes any destination a signed key signs, and refuses a valid signature over another URL", async () => {
    const id = newId();
    const signed = (url: string) =>
      new URL(signClickUrl({ baseUrl: "http://api", key: "ing-adserver", signingSecret, id, adId: "ad-9", url }));
    const good = signed("https://advertiser.example/landing?c=1");
    const response = await keyed.inject({ url: `${good.pathname}${good.search}` });
    expect(response.statusCode).toBe(302);
    expect(response.headers.location).toBe("https://advertiser.example/landing?c=1");
    accepted.push(id);

    for (const other of ["https://evil.example/", "https://advertiser.example/landing?c=2", "javascript:alert(1)"]) {
      const moved = new URL(good);
      moved.searchParams.set("url", other);
      const refused = await keyed.inject({ url: `${moved.pathname}${moved.search}` });
      expect(refused.statusCode, other).toBe(403);
      expect(refused.json().error).toBe("invalid_signature");
    }
    // A signed key sends signed clicks only, and its signature of a javascript: URL is still no destination.
    const unsigned = await click(keyed, withKey("https://advertiser.example/", { key: "ing-adserver" }), {});
    expect(unsigned.json().error).toBe("signature_required");
    const script = signed("javascript:alert(1)");
    const scripted = await keyed.inject({ url: `${script.pathname}${script.search}` });
    expect(scripted.statusCode).toBe(400);
    expect(scripted.json().error).toBe("invalid_destination");
  });

  it("with AUTH=off, redirects only to CLICK_DOMAINS", async () => {
    const ok = { id: newId(), adId: "ad-7", url: "https://every.example/a" };
    expect((await click(open, ok, {})).statusCode).toBe(302);
    accepted.push(ok.id);
    const refused = await click(open, { id: newId(), adId: "ad-7", url: "https://shop.example/" }, {});
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({
      error: "destination_not_allowed",
      message: expect.stringContaining("AUTH=off"),
    });
  });

  it("refuses an unknown parameter, a typo of its own, a missing url and a bad id, and ignores cachebusters", async () => {
    for (const [extra, message] of [
      [{ campaign: "x" }, "unknown query parameter: campaign"],
      [{ URL: "https://shop.example/" }, "unknown query parameter: URL"],
      [{ userid: "12345678" }, "unknown query parameter: userid"],
      [{ id: "a b" }, "id must be 1-128 characters"],
    ] as const) {
      const response = await click(keyed, withKey("https://shop.example/", extra));
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: "invalid_query", message: expect.stringContaining(message) });
    }
    const { url: _, ...noUrl } = withKey("https://shop.example/");
    expect((await click(keyed, noUrl)).json().message).toContain("url is required");
  });

  it("over the key's rate, sends the person on without counting the click", async () => {
    // A bucket of 2 s of 1 click/s: the first two go to Kafka, the next ones (well within a second) do not.
    for (let i = 0; i < 5; i++) {
      const params = withKey("https://shop.example/", { key: "ing-slow" });
      slow.push(params.id);
      const response = await click(keyed, params, {});
      expect(response.statusCode).toBe(302);
      expect(response.headers.location).toBe("https://shop.example/");
    }
  });

  it("labels a click's traffic by the navigation's own headers, as a pixel's", async () => {
    for (const [userAgent, ids] of [
      [DESKTOP_CHROME, humanClicks],
      [GOOGLEBOT, botClicks],
    ] as const) {
      const params = withKey("https://shop.example/");
      const response = await click(keyed, params, { ...REFERER, "user-agent": userAgent });
      expect(response.statusCode).toBe(302);
      accepted.push(params.id);
      ids.push(params.id);
    }
  });

  it("wrote exactly the clicks it let in to the topic, keyed by impression id, as kind click", async () => {
    const marker = withKey("https://shop.example/end");
    expect((await click(keyed, marker)).statusCode).toBe(302);
    // Until every expected click is read: the marker's partition may be read before the other one is.
    const expected = [marker.id, ...accepted, ...slow.slice(0, 2)];
    const messages = await readTopic(testConfig(topics).KAFKA_BROKERS, topics.KAFKA_TOPIC, (seen) =>
      expected.every((id) => seen.some((m) => m.key === id)),
    );
    const events = messages.map((m) => ({ key: m.key, ...JSON.parse(m.value) }));
    for (const event of events) expect(event).toMatchObject({ key: event.id, kind: "click" });
    expect(events.find((e) => e.id === accepted[0])).toMatchObject({ adId: "ad-7", userId: "u-1" });
    expect(events.filter((e) => humanClicks.includes(e.id)).map((e) => e.traffic)).toEqual(["valid"]);
    expect(events.filter((e) => botClicks.includes(e.id)).map((e) => e.traffic)).toEqual(["bot"]);
    const ids: string[] = events.map((e) => e.id).filter((id) => id !== marker.id);
    const sentSlow = ids.filter((id) => slow.includes(id));
    expect(ids.filter((id) => !slow.includes(id)).sort()).toEqual([...accepted].sort());
    // The first two (the bucket) went; partitions give no order between them.
    expect(sentSlow).toEqual(expect.arrayContaining(slow.slice(0, 2)));
    expect(sentSlow.length).toBeLessThan(slow.length);
  });
});
