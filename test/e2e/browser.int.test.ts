import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.ts";
import { createImpressionProducer } from "../../src/kafka/producer.ts";
import { ensureTopics, impressionTopics } from "../../src/kafka/topics.ts";
import { createWorker } from "../../src/worker/worker.ts";
import { servePage, useBrowser } from "../support/browser.ts";
import { createTestDatabase } from "../support/clickhouse.ts";
import { testConfig } from "../support/config.ts";
import { makeImpression } from "../support/impressions.ts";
import { waitFor } from "../support/wait.ts";

// The whole system as a browser meets it: a publisher's page on an origin of its own sends impressions in
// every way a page can, through the real API, Kafka, a worker, Valkey and ClickHouse, to GET /stats.

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const browser = useBrowser();
const logger = pino({ level: "warn" });
/** Everything this file started, closed in reverse order after its last test. */
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

/** The API, listening on a free port, and one worker, on a topic, group and database of their own. */
async function startSystem(overrides: Record<string, string> = {}): Promise<{ api: string }> {
  const name = `e2e-${randomBytes(4).toString("hex")}`;
  const db = await createTestDatabase(
    testConfig({
      API_ROLE: "all",
      AUTH: "off",
      KAFKA_TOPIC: name,
      KAFKA_DLQ_TOPIC: `${name}.dlq`,
      KAFKA_CONSUMER_GROUP: `${name}-group`,
      KAFKA_PARTITIONS: "2",
      WORKER_BATCH_MAX_WAIT_MS: "100",
      ...overrides,
    }),
  );
  closers.push(() => db.drop());
  const { config } = db;
  await ensureTopics(config.KAFKA_BROKERS, "e2e-test", impressionTopics(config));
  const worker = createWorker(config, logger);
  closers.push(() => worker.stop());
  await worker.start();
  const producer = createImpressionProducer(config);
  closers.push(() => producer.close());
  const app = await buildApp({ config, producer, clickhouse: db.clickhouse, checks: {}, logger: false });
  closers.push(() => app.close());
  await app.listen({ host: "127.0.0.1", port: 0 });
  return { api: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

/**
 * A publisher's page: `html` served on an origin of its own, in a fresh browser context. Its actions run in
 * the page from source strings, as the project compiles without DOM types.
 */
async function openPublisherPage(html: string) {
  const site = await servePage(`<!doctype html>${html}`);
  const context = await browser().newContext();
  closers.push(
    () => site.close(),
    () => context.close(),
  );
  const page = await context.newPage();
  await page.goto(site.origin); // waits for the load event, so the tag has run
  const run = <T>(fn: string, ...args: unknown[]): Promise<T> => page.evaluate(`(${fn})(...${JSON.stringify(args)})`);
  return {
    /** A JSON POST (preflighted): what the page can read of the answer. */
    post: (url: string, body: string) =>
      run<{ status: number; body: unknown }>(
        `async (url, body) => {
          const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
          return { status: res.status, body: await res.json() };
        }`,
        url,
        body,
      ),
    /** true: the browser queued it. */
    beacon: (url: string, body: string) => run<boolean>("(url, body) => navigator.sendBeacon(url, body)", url, body),
    /** An <img> in the page: its natural width once loaded; rejects if it does not load. */
    image: (src: string) =>
      run<number>(
        `(src) => new Promise((resolve, reject) => {
          const img = document.createElement("img");
          img.onload = () => resolve(img.naturalWidth);
          img.onerror = () => reject(new Error("the image did not load: " + src));
          img.src = src;
          document.body.append(img);
        })`,
        src,
      ),
    /** The tag's impressions.track: the id it sent. */
    track: (adId: string, userId: string) =>
      run<string>("(adId, userId) => impressions.track({ adId, userId })", adId, userId),
  };
}

async function stats(api: string, adIds: string[]): Promise<Record<string, number>> {
  const query = new URLSearchParams({ timeWindowMinutes: "5" });
  for (const adId of adIds) query.append("adId", adId);
  const res = await fetch(`${api}/stats?${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, number>;
}

/** Polls GET /stats until each ad has at least its expected count; the caller asserts they are exact. */
function countsReaching(api: string, expected: Record<string, number>): Promise<Record<string, number>> {
  return waitFor(`GET /stats to reach ${JSON.stringify(expected)}`, 30_000, async () => {
    const counts = await stats(api, Object.keys(expected));
    return Object.entries(expected).every(([adId, n]) => (counts[adId] ?? 0) >= n) ? counts : undefined;
  });
}

/** Until GET /metrics shows no lag: the worker has handled everything on the topic. */
function drained(api: string): Promise<true> {
  return waitFor("the worker group's lag to reach 0", 30_000, async () => {
    const metrics = await (await fetch(`${api}/metrics`)).text();
    return /^impressions_consumer_lag_total\{[^}]*\} 0$/m.test(metrics) ? true : undefined;
  });
}

describe("a publisher's page in Chromium, against the whole system", () => {
  it("counts once each impression sent by fetch, beacon, batch beacon, pixel and the tag", async () => {
    const { api } = await startSystem();
    const page = await openPublisherPage(`<script src="${api}/sdk.js"></script>`);
    const run = randomBytes(3).toString("hex");
    const ad = (way: string) => `e2e-${run}-${way}`;
    const event = (way: string) => makeImpression(run, { adId: ad(way) });

    // application/json is not CORS-safelisted: the browser preflights, and lets the page read the answer only
    // if the API allows its origin.
    const fetched = JSON.stringify(event("fetch"));
    const accepted = { status: 202, body: { accepted: 1, rejected: [] } };
    expect(await page.post(`${api}/event`, fetched)).toEqual(accepted);
    expect(await page.beacon(`${api}/event`, JSON.stringify(event("beacon")))).toBe(true);
    const batch = [event("batch"), event("batch"), event("batch")];
    expect(await page.beacon(`${api}/events`, JSON.stringify(batch))).toBe(true);
    const { id, adId, userId } = event("pixel");
    expect(await page.image(`${api}/pixel.gif?${new URLSearchParams({ id, adId, userId })}`)).toBe(1);
    expect(await page.track(ad("tag"), `u-${run}`)).toMatch(UUID_V4);

    const expected = { [ad("fetch")]: 1, [ad("beacon")]: 1, [ad("batch")]: 3, [ad("pixel")]: 1, [ad("tag")]: 1 };
    expect(await countsReaching(api, expected)).toEqual(expected);

    // A copy, as a sender's retry would send, is accepted and then dropped by the worker.
    expect(await page.post(`${api}/event`, fetched)).toEqual(accepted);
    await drained(api);
    expect(await stats(api, Object.keys(expected))).toEqual(expected);
  });
});
