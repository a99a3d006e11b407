import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownTopics, testConfig } from "../../test/support/config.ts";
import { makeImpression } from "../../test/support/impressions.ts";
import { readTopic } from "../../test/support/kafka.ts";
import { buildApp } from "../api/app.ts";
import { Keyring } from "../auth/keyring.ts";
import { hashSecret } from "../auth/keys-file.ts";
import type { Config } from "../config.ts";
import { createGate } from "../http/access-hooks.ts";
import { createImpressionProducer, type ImpressionProducer } from "../kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../kafka/topics.ts";

// What the ingest routes write for each kind of viewer: the label and network on the topic, as the workers read
// them. Two APIs on one topic: one open, behind a trusted proxy (TRUST_PROXY), one with keys.

const suffix = randomUUID().slice(0, 8);
const dir = mkdtempSync(join(tmpdir(), "ingest-traffic-"));
const rangesFile = join(dir, "ranges.txt");
writeFileSync(rangesFile, "# a data center\n198.51.100.0/24\n");
const PROXY = "192.0.2.10";
const common = {
  ...ownTopics("ingest-traffic"),
  KAFKA_PARTITIONS: "2",
  API_ROLE: "ingest",
  IVT_IP_RANGES_FILE: rangesFile,
  IVT_ACTIVITY_MAX_PER_USER: "2",
};
const config = testConfig({ ...common, TRUST_PROXY: PROXY });
const keyed = testConfig({ ...common, AUTH: "required" });
const BROWSER_KEY = "imp_ing_browser-only";
const PLAIN_KEY = "imp_ing_plain";

const CHROME =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
/** What a page's beacon carries besides its body. */
const PAGE = {
  "user-agent": CHROME,
  origin: "https://news.example",
  "sec-fetch-mode": "no-cors",
  "sec-fetch-site": "cross-site",
};

let producer: ImpressionProducer;
let app: FastifyInstance;
let keyedApp: FastifyInstance;

beforeAll(async () => {
  await ensureTopics(config.KAFKA_BROKERS, config.KAFKA_CLIENT_ID, impressionTopics(config));
  producer = createImpressionProducer(config);
  app = await buildApp({ config, producer, checks: {}, logger: false });
  const keyring = new Keyring({
    version: 1,
    keys: [
      {
        name: "pages",
        scope: "ingest",
        sha256: hashSecret(BROWSER_KEY),
        createdAt: new Date().toISOString(),
        browser: true,
      },
      { name: "server", scope: "ingest", sha256: hashSecret(PLAIN_KEY), createdAt: new Date().toISOString() },
    ],
  });
  const gate = createGate(keyed as Config, { current: () => keyring });
  keyedApp = await buildApp({ config: keyed, producer, gate, checks: {}, logger: false });
});
afterAll(async () => {
  await app?.close();
  await keyedApp?.close();
  await producer?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The messages of these ids on the topic, parsed, by id. */
async function written(ids: string[]): Promise<Record<string, Record<string, unknown>>> {
  const messages = await readTopic(config.KAFKA_BROKERS, config.KAFKA_TOPIC, (seen) =>
    ids.every((id) => seen.some((m) => m.key === id)),
  );
  return Object.fromEntries(messages.filter((m) => ids.includes(m.key)).map((m) => [m.key, JSON.parse(m.value)]));
}

const event = (fields: Record<string, unknown> = {}): Record<string, unknown> & { id: string } => ({
  ...makeImpression(suffix),
  ...fields,
});

function postEvent(
  body: object,
  headers: Record<string, string> = {},
  remoteAddress = "203.0.113.9",
  target: FastifyInstance = app,
) {
  return target.inject({
    method: "POST",
    url: "/event",
    headers: { "content-type": "text/plain", ...headers },
    payload: JSON.stringify(body),
    remoteAddress,
  });
}

describe("traffic labels on the topic", () => {
  it("labels a page's impression by its request: valid from a browser, bot from a crawler, with the network", async () => {
    const fromBrowser = event();
    const fromCrawler = event();
    expect((await postEvent(fromBrowser, PAGE)).statusCode).toBe(202);
    expect((await postEvent(fromCrawler, { ...PAGE, "user-agent": GOOGLEBOT })).statusCode).toBe(202);
    const messages = await written([fromBrowser.id, fromCrawler.id]);
    expect(messages[fromBrowser.id]).toEqual({ ...fromBrowser, traffic: "valid", ipPrefix: "203.0.113.0/24" });
    expect(messages[fromCrawler.id]).toEqual({ ...fromCrawler, traffic: "bot", ipPrefix: "203.0.113.0/24" });
  });

  it("leaves a server's event without evidence unclassified, and labels one by its userAgent and ip", async () => {
    const bare = event();
    const reported = event({ userAgent: CHROME, ip: "198.51.100.20" });
    const batchBot = event({ userAgent: "python-requests/2.31.0" });
    const batchBare = event();
    // A server's own User-Agent and address say nothing of the viewer; Node's fetch sends Sec-Fetch-Mode, but no
    // Sec-Fetch-Site or Origin as a page's request would.
    expect((await postEvent(bare, { "user-agent": "node", "sec-fetch-mode": "cors" })).statusCode).toBe(202);
    expect((await postEvent(reported)).statusCode).toBe(202);
    const batch = await app.inject({
      method: "POST",
      url: "/events",
      headers: { "content-type": "application/json" },
      payload: JSON.stringify([batchBot, batchBare]),
      remoteAddress: "198.51.100.1",
    });
    expect(batch.json()).toEqual({ accepted: 2, rejected: [] });
    const messages = await written([bare.id, reported.id, batchBot.id, batchBare.id]);
    const { userAgent: _ua, ip: _ip, ...reportedImpression } = reported;
    const { userAgent: _bot, ...batchBotImpression } = batchBot;
    expect(messages[bare.id]).toEqual(bare);
    expect(messages[reported.id]).toEqual({ ...reportedImpression, traffic: "ip_range", ipPrefix: "198.51.100.0/24" });
    expect(messages[batchBot.id]).toEqual({ ...batchBotImpression, traffic: "bot" });
    expect(messages[batchBare.id]).toEqual(batchBare);
  });

  it("labels a pixel fetched as a prefetch, and one from a page's <img> valid", async () => {
    const prefetched = makeImpression(suffix);
    const shown = makeImpression(suffix);
    const pixel = (e: ReturnType<typeof makeImpression>, headers: Record<string, string>) =>
      app.inject({
        url: `/pixel.gif?${new URLSearchParams({ id: e.id, adId: e.adId, userId: e.userId })}`,
        headers: { "user-agent": CHROME, "sec-fetch-dest": "image", "sec-fetch-mode": "no-cors", ...headers },
        remoteAddress: "203.0.113.9",
      });
    expect((await pixel(prefetched, { "sec-purpose": "prefetch" })).statusCode).toBe(200);
    expect((await pixel(shown, {})).statusCode).toBe(200);
    const messages = await written([prefetched.id, shown.id]);
    expect(messages[prefetched.id]?.traffic).toBe("prefetch");
    expect(messages[shown.id]?.traffic).toBe("valid");
  });

  it("labels the impressions of one ad to one user past IVT_ACTIVITY_MAX_PER_USER", async () => {
    const ts = Date.now() - 1_000;
    const burst = [1, 2, 3].map(() => event({ userId: `u-burst-${suffix}`, adId: `ad-burst-${suffix}`, ts }));
    for (const e of burst) expect((await postEvent(e, PAGE)).statusCode).toBe(202);
    const messages = await written(burst.map((e) => e.id));
    expect(burst.map((e) => messages[e.id]?.traffic)).toEqual(["valid", "valid", "activity"]);
  });
});

describe("TRUST_PROXY", () => {
  it("ignores a spoofed X-Forwarded-For from a peer that is not a trusted proxy", async () => {
    const spoofed = event();
    // The peer claims to forward for an address of the listed range; it is not the proxy, so its own address counts.
    const answer = await postEvent(spoofed, { ...PAGE, "x-forwarded-for": "198.51.100.7" }, "203.0.113.66");
    expect(answer.statusCode).toBe(202);
    expect((await written([spoofed.id]))[spoofed.id]).toMatchObject({ traffic: "valid", ipPrefix: "203.0.113.0/24" });
  });

  it("takes the client's address from X-Forwarded-For through the trusted proxy", async () => {
    const forwarded = event();
    const listed = event();
    await postEvent(forwarded, { ...PAGE, "x-forwarded-for": "203.0.114.5" }, PROXY);
    await postEvent(listed, { ...PAGE, "x-forwarded-for": "198.51.100.7" }, PROXY);
    const messages = await written([forwarded.id, listed.id]);
    expect(messages[forwarded.id]).toMatchObject({ traffic: "valid", ipPrefix: "203.0.114.0/24" });
    expect(messages[listed.id]).toMatchObject({ traffic: "ip_range", ipPrefix: "198.51.100.0/24" });
  });
});

describe("a key created with --browser", () => {
  it("labels what a non-browser client sends with it non_browser, and a page's impression valid", async () => {
    const fromPage = event();
    const fromScript = event();
    const onPlainKey = event();
    const auth = (key: string) => ({ authorization: `Bearer ${key}` });
    expect((await postEvent(fromPage, { ...PAGE, ...auth(BROWSER_KEY) }, undefined, keyedApp)).statusCode).toBe(202);
    // A script replaying the page's public key: no Origin, no Sec-Fetch-*.
    const replay = await postEvent(fromScript, { "user-agent": CHROME, ...auth(BROWSER_KEY) }, undefined, keyedApp);
    expect(replay.statusCode).toBe(202);
    expect((await postEvent(onPlainKey, auth(PLAIN_KEY), undefined, keyedApp)).statusCode).toBe(202);
    const messages = await written([fromPage.id, fromScript.id, onPlainKey.id]);
    expect(messages[fromPage.id]?.traffic).toBe("valid");
    expect(messages[fromScript.id]?.traffic).toBe("non_browser");
    expect(messages[onPlainKey.id]?.traffic).toBeUndefined();
  });
});
