import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { servePage, useBrowser } from "../support/browser.ts";
import { makeImpression } from "../support/impressions.ts";
import { runKeysCli } from "../support/keys.ts";
import { startTestSystem, useClosers } from "../support/system.ts";
import { waitFor } from "../support/wait.ts";

// The whole system as a browser meets it: a publisher's page on an origin of its own sends impressions in
// every way a page can, through the real API, Kafka, a worker, Valkey and ClickHouse, to GET /stats; and, with
// keys on, what a key bound to one page's origin lets in from it, from another page, and once revoked.

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const browser = useBrowser();
const closers = useClosers();

interface System {
  api: string;
  /** Headers for GET /stats and /metrics: the query key when keys are on. */
  queryHeaders: Record<string, string>;
}

/** The system of test/support/system.ts; with `keys`, read with its query key. */
async function startSystem(keys?: { file: string; queryKey: string }): Promise<System> {
  const { api } = await startTestSystem("e2e", closers, keys?.file);
  return { api, queryHeaders: keys ? { authorization: `Bearer ${keys.queryKey}` } : {} };
}

/** A keys file in a temporary directory of its own (removed after), and `npm run keys -- …` on it. */
function useKeysFile() {
  const dir = mkdtempSync(join(tmpdir(), "e2e-keys-"));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "keys.json");
  return {
    file,
    /** Runs the real CLI; returns its last line, which for `create` is the new key. */
    cli: (...args: string[]) => runKeysCli(file, ...args),
  };
}

/**
 * A publisher's page: `html` served on an origin of its own, in a fresh browser context. Its actions run in
 * the page from source strings, as the project compiles without DOM types.
 */
async function openPublisherPage(html = "", options: { clockAheadMs?: number } = {}) {
  const site = await servePage(`<!doctype html>${html}`);
  const context = await browser().newContext();
  // The page's Date runs this far ahead of the API's clock (timers run as usual).
  if (options.clockAheadMs) await context.clock.setSystemTime(Date.now() + options.clockAheadMs);
  closers.push(
    () => site.close(),
    () => context.close(),
  );
  const page = await context.newPage();
  // What the API answered each request with a body, beacons included, whose answers the page cannot read.
  const answers: { body: string; status: number }[] = [];
  page.on("response", (response) => {
    const body = response.request().postData();
    if (body) answers.push({ body, status: response.status() });
  });
  await page.goto(site.origin); // waits for the load event, so the tag has run
  const run = <T>(fn: string, ...args: unknown[]): Promise<T> => page.evaluate(`(${fn})(...${JSON.stringify(args)})`);
  return {
    origin: site.origin,
    /**
     * Replaces the document with `html`, at the same URL and so on the same origin, and waits for its load
     * event: for a tag whose key can only be made once the page's origin is known.
     */
    show: (html: string) => page.setContent(`<!doctype html>${html}`),
    /** A POST by fetch (JSON is preflighted, text/plain is not): what the page can read of the answer. */
    post: (url: string, body: string, contentType = "application/json") =>
      run<{ status: number; body: unknown }>(
        `async (url, body, contentType) => {
          const res = await fetch(url, { method: "POST", headers: { "content-type": contentType }, body });
          return { status: res.status, body: await res.json() };
        }`,
        url,
        body,
        contentType,
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
    /** The page's clock. */
    now: () => run<number>("() => Date.now()"),
    /** The tag's impressions.track: the id it sent. */
    track: (adId: string, userId: string) =>
      run<string>("(adId, userId) => impressions.track({ adId, userId })", adId, userId),
    /** The status the API answered the request whose body holds `text` (such as an id) with. */
    answerTo: (text: string) =>
      waitFor(
        `an answer to the request carrying ${text}`,
        10_000,
        () => answers.find((a) => a.body.includes(text))?.status,
      ),
  };
}

async function stats({ api, queryHeaders }: System, adIds: string[]): Promise<Record<string, number>> {
  const query = new URLSearchParams({ timeWindowMinutes: "5" });
  for (const adId of adIds) query.append("adId", adId);
  const res = await fetch(`${api}/stats?${query}`, { headers: queryHeaders });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, number>;
}

/** Polls GET /stats until each ad has at least its expected count; the caller asserts they are exact. */
function countsReaching(system: System, expected: Record<string, number>): Promise<Record<string, number>> {
  return waitFor(`GET /stats to reach ${JSON.stringify(expected)}`, 30_000, async () => {
    const counts = await stats(system, Object.keys(expected));
    return Object.entries(expected).every(([adId, n]) => (counts[adId] ?? 0) >= n) ? counts : undefined;
  });
}

/** Until GET /metrics shows no lag: the worker has handled everything on the topic. */
function drained({ api, queryHeaders }: System): Promise<true> {
  return waitFor("the worker group's lag to reach 0", 30_000, async () => {
    const res = await fetch(`${api}/metrics`, { headers: queryHeaders });
    expect(res.status).toBe(200);
    return /^impressions_consumer_lag_total\{[^}]*\} 0$/m.test(await res.text()) ? true : undefined;
  });
}

/** GET /stats leaves out ads without impressions: `expected` with its zeros dropped. */
function asStats(expected: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(expected).filter(([, n]) => n > 0));
}

describe("a publisher's page in Chromium, against the whole system", () => {
  it("counts once each impression sent by fetch, beacon, batch beacon, pixel and the tag", async () => {
    const system = await startSystem();
    const { api } = system;
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

    // The tag lets the API stamp the time: a browser whose clock is 10 minutes fast (beyond MAX_FUTURE_SKEW_MS)
    // is counted too.
    const fast = await openPublisherPage(`<script src="${api}/sdk.js"></script>`, { clockAheadMs: 10 * 60_000 });
    expect((await fast.now()) - Date.now()).toBeGreaterThan(9 * 60_000);
    const fastId = await fast.track(ad("fast-clock"), `u-${run}`);
    expect(await fast.answerTo(fastId)).toBe(202);

    const expected = {
      [ad("fetch")]: 1,
      [ad("beacon")]: 1,
      [ad("batch")]: 3,
      [ad("pixel")]: 1,
      [ad("tag")]: 1,
      [ad("fast-clock")]: 1,
    };
    expect(await countsReaching(system, expected)).toEqual(expected);

    // A copy, as a sender's retry would send, is accepted and then dropped by the worker.
    expect(await page.post(`${api}/event`, fetched)).toEqual(accepted);
    await drained(system);
    expect(await stats(system, Object.keys(expected))).toEqual(expected);
  });

  describe("with keys on (AUTH=required), an ingest key bound to page A's origin", () => {
    let keys: ReturnType<typeof useKeysFile>;
    let system: System;
    let pageA: Awaited<ReturnType<typeof openPublisherPage>>;
    let pageB: Awaited<ReturnType<typeof openPublisherPage>>;
    let key: string;
    const run = randomBytes(3).toString("hex");
    const ad = (page: string, way: string) => `e2e-${run}-${page}-${way}`;
    const event = (adId: string) => JSON.stringify(makeImpression(run, { adId }));

    /**
     * The three ways a page sends with the key, one after the other, each to an ad of its own: the tag (what
     * the API answered its beacon, which only the browser sees), a fetch with ?key=, and the pixel with &key=.
     */
    async function sendAllWays(page: typeof pageA, name: string) {
      const { id, adId, userId } = makeImpression(run, { adId: ad(name, "pixel") });
      return {
        tag: await page.answerTo(await page.track(ad(name, "tag"), `u-${run}`)),
        fetch: await page.post(`${system.api}/event?key=${key}`, event(ad(name, "fetch"))),
        pixel: await page.image(`${system.api}/pixel.gif?${new URLSearchParams({ id, adId, userId, key })}`).then(
          () => "loaded",
          () => "did not load",
        ),
      };
    }

    beforeAll(async () => {
      // The keys are made before the API starts, for page A's origin, so it never runs open.
      keys = useKeysFile();
      pageA = await openPublisherPage();
      pageB = await openPublisherPage();
      key = keys.cli("create", "--scope", "ingest", "--name", "site", "--origin", pageA.origin);
      const queryKey = keys.cli("create", "--scope", "query", "--name", "reader");
      system = await startSystem({ file: keys.file, queryKey });
      const tag = `<script src="${system.api}/sdk.js" data-key="${key}"></script>`;
      await pageA.show(tag);
      await pageB.show(tag);
    });

    it("counts what page A sends with the key, and nothing page B (another origin) sends with it", async () => {
      expect(await sendAllWays(pageA, "a")).toEqual({
        tag: 202,
        fetch: { status: 202, body: { accepted: 1, rejected: [] } },
        pixel: "loaded",
      });
      // Error answers carry Access-Control-Allow-Origin, so page B can read why it was refused.
      expect(await sendAllWays(pageB, "b")).toMatchObject({
        tag: 403,
        fetch: { status: 403, body: { error: "origin_not_allowed" } },
        pixel: "did not load",
      });

      const expected = {
        [ad("a", "tag")]: 1,
        [ad("a", "fetch")]: 1,
        [ad("a", "pixel")]: 1,
        [ad("b", "tag")]: 0,
        [ad("b", "fetch")]: 0,
        [ad("b", "pixel")]: 0,
      };
      await countsReaching(system, expected);
      await drained(system);
      expect(await stats(system, Object.keys(expected))).toEqual(asStats(expected));
    });

    it("stops taking the key within 5 s of its revocation, and counts nothing sent with it after", async () => {
      keys.cli("revoke", "site");
      const revokedAt = Date.now();
      // Page A keeps sending, every 200 ms; what was accepted before the API saw the revocation is counted.
      const statuses: number[] = [];
      const refused = await waitFor(
        "page A's key to be refused",
        10_000,
        async () => {
          const answer = await pageA.post(`${system.api}/event?key=${key}`, event(ad("a", "probe")), "text/plain");
          statuses.push(answer.status);
          return answer.status === 202 ? undefined : answer;
        },
        200,
      );
      const refusedAfterMs = Date.now() - revokedAt;
      expect(refused).toMatchObject({ status: 401, body: { error: "invalid_api_key" } });
      expect(refusedAfterMs).toBeLessThan(5_000);

      expect(await sendAllWays(pageA, "revoked")).toMatchObject({
        tag: 401,
        fetch: { status: 401, body: { error: "invalid_api_key" } },
        pixel: "did not load",
      });

      const expected = {
        [ad("a", "probe")]: statuses.filter((status) => status === 202).length,
        [ad("revoked", "tag")]: 0,
        [ad("revoked", "fetch")]: 0,
        [ad("revoked", "pixel")]: 0,
      };
      await countsReaching(system, expected);
      await drained(system);
      expect(await stats(system, Object.keys(expected))).toEqual(asStats(expected));
    });
  });
});
