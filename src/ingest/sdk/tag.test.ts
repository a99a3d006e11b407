import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "playwright-core";
import { describe, expect, it, onTestFinished } from "vitest";
import { servePage, useBrowser } from "../../../test/support/browser.ts";
import { waitFor } from "../../../test/support/wait.ts";
import { SDK_SCRIPT } from "./sdk.ts";

// The tag's own fallback order, against a recorder standing in for the API (the end-to-end test of the tag
// against the real API is elsewhere). Each test has its own recorder, publisher page and browser context.

interface Recorded {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  /** Sec-Fetch-Mode: "no-cors" for the beacon of a text body, "cors" for fetch. */
  fetchMode: string | undefined;
  body: string;
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const BEACON_FAILS = "navigator.sendBeacon = () => false;";

const browser = useBrowser();

/** Records every request; POST /event answers eventStatus(the event's userId), with CORS headers like the API. */
async function startRecorder(eventStatus: (userId: string) => number = () => 202) {
  const requests: Recorded[] = [];
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const url = new URL(req.url ?? "/", "http://host");
    const header = (name: string) => req.headers[name] as string | undefined;
    requests.push({
      method: req.method ?? "",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: header("content-type"),
      fetchMode: header("sec-fetch-mode"),
      body,
    });
    res.setHeader("access-control-allow-origin", "*");
    if (url.pathname === "/sdk.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(SDK_SCRIPT);
    } else if (req.method === "POST" && url.pathname === "/event") {
      res.writeHead(eventStatus(JSON.parse(body).userId)).end();
    } else {
      res.writeHead(204).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const sent = () => requests.filter((r) => r.path === "/event" || r.path === "/pixel.gif");
  return {
    origin,
    requests,
    /** The first n requests to /event or /pixel.gif, once they have arrived. */
    sent: (n: number) =>
      waitFor(`${n} request(s) to ${origin}`, 10_000, () => (sent().length >= n ? sent() : undefined)),
  };
}

/** A publisher page on its own origin that runs `head` (inline) and then embeds the tag from `api`. */
async function openPublisherPage(api: string, options: { initScript?: string; head?: string } = {}): Promise<Page> {
  const site = await servePage(
    `<!doctype html><script>${options.head ?? ""}</script><script src="${api}/sdk.js" data-key="k1" async></script>`,
  );
  const context = await browser().newContext();
  onTestFinished(async () => {
    await context.close();
    await site.close();
  });
  const page = await context.newPage();
  if (options.initScript) await page.addInitScript(options.initScript);
  await page.goto(site.origin); // waits for the load event, which waits for the async tag
  return page;
}

function track(page: Page, userId = "u-1"): Promise<string> {
  return page.evaluate(`impressions.track({ adId: "ad-1", userId: ${JSON.stringify(userId)} })`);
}

describe("page tag (sdk.js) in Chromium", () => {
  it("sends the event as a text/plain beacon to POST /event?key=, without ts (the API stamps the time)", async () => {
    const api = await startRecorder();
    const page = await openPublisherPage(api.origin);
    const id = await track(page);

    const [event] = await api.sent(1);
    expect(event).toMatchObject({ method: "POST", path: "/event", query: { key: "k1" }, fetchMode: "no-cors" });
    expect(event?.contentType).toMatch(/^text\/plain/);
    expect(JSON.parse(event?.body ?? "")).toEqual({ id, userId: "u-1", adId: "ad-1" });
    expect(id).toMatch(UUID_V4);
    expect(api.requests.filter((r) => r.method === "OPTIONS")).toEqual([]); // no preflight
  });

  it("posts with fetch when sendBeacon refuses the event", async () => {
    const api = await startRecorder();
    const page = await openPublisherPage(api.origin, { initScript: BEACON_FAILS });
    const id = await track(page);

    const [event] = await api.sent(1);
    expect(event).toMatchObject({ method: "POST", path: "/event", query: { key: "k1" }, fetchMode: "cors" });
    expect(event?.contentType).toBe("text/plain");
    expect(JSON.parse(event?.body ?? "")).toEqual({ id, userId: "u-1", adId: "ad-1" });
    expect(api.requests.filter((r) => r.method === "OPTIONS")).toEqual([]);
  });

  it("falls back to the pixel, without ts, when the API answers 503", async () => {
    const api = await startRecorder(() => 503);
    const page = await openPublisherPage(api.origin, { initScript: BEACON_FAILS });
    const id = await track(page);

    const [event, pixel] = await api.sent(2);
    expect(event).toMatchObject({ method: "POST", path: "/event" });
    expect(pixel).toMatchObject({ method: "GET", path: "/pixel.gif" });
    expect(pixel?.query).toEqual({ id, adId: "ad-1", userId: "u-1", key: "k1" });
  });

  it("sends no pixel when the API refuses the event with a 4xx", async () => {
    const api = await startRecorder((userId) => (userId === "refused" ? 400 : 503));
    const page = await openPublisherPage(api.origin, { initScript: BEACON_FAILS });
    await track(page, "refused");
    await api.sent(1);
    // A second event, answered 503, is sent after the first one's answer and goes on to its pixel: when that
    // pixel has arrived, a pixel for the refused event would have too.
    const id = await track(page, "u-2");

    const sent = await api.sent(3);
    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual(["POST /event", "POST /event", "GET /pixel.gif"]);
    expect(sent[2]?.query).toMatchObject({ id, userId: "u-2" });
  });

  it("makes a v4 UUID without crypto.randomUUID (non-secure contexts)", async () => {
    const api = await startRecorder();
    const page = await openPublisherPage(api.origin, { initScript: "delete Crypto.prototype.randomUUID;" });
    expect(await page.evaluate("typeof crypto.randomUUID")).toBe("undefined");
    const ids = [await track(page), await track(page)];

    expect(ids[0]).toMatch(UUID_V4);
    expect(ids[1]).toMatch(UUID_V4);
    expect(ids[0]).not.toBe(ids[1]);
    const sent = await api.sent(2);
    expect(sent.map((r) => JSON.parse(r.body).id).sort()).toEqual([...ids].sort());
  });

  it("replays the calls queued by the snippet before the tag loaded", async () => {
    const api = await startRecorder();
    await openPublisherPage(api.origin, {
      head: `window.impressions = { q: [], track(...a) { this.q.push(a); } };
        impressions.track({ adId: "ad-q", userId: "u-q" });`,
    });

    const [event] = await api.sent(1);
    expect(JSON.parse(event?.body ?? "")).toMatchObject({
      id: expect.stringMatching(UUID_V4),
      adId: "ad-q",
      userId: "u-q",
    });
  });

  it("reports navigator.webdriver with the event, and on the pixel", async () => {
    const api = await startRecorder(() => 503);
    const automated = "Object.defineProperty(Navigator.prototype, 'webdriver', { get: () => true });";
    const page = await openPublisherPage(api.origin, { initScript: `${automated}${BEACON_FAILS}` });
    const id = await track(page);

    const [event, pixel] = await api.sent(2);
    expect(JSON.parse(event?.body ?? "")).toEqual({ id, userId: "u-1", adId: "ad-1", webdriver: true });
    expect(pixel?.query).toEqual({ id, adId: "ad-1", userId: "u-1", webdriver: "1", key: "k1" });
  });

  it("sends nothing while the page is prerendered, and the impression once it is shown", async () => {
    // playwright-core keeps Chromium from prerendering (test/e2e/ivt.int.test.ts prerenders for real): the page
    // says it is prerendered until the test shows it, as Chromium does on activation.
    const prerendered = `window.shown = false;
      Object.defineProperty(Document.prototype, "prerendering", { get: () => !window.shown });`;
    const api = await startRecorder();
    const page = await openPublisherPage(api.origin, { initScript: prerendered });
    const id = await track(page);
    await page.waitForTimeout(500);
    expect(api.requests.filter((r) => r.path === "/event" || r.path === "/pixel.gif")).toEqual([]);

    await page.evaluate(`window.shown = true; document.dispatchEvent(new Event("prerenderingchange"));`);
    const [event] = await api.sent(1);
    expect(JSON.parse(event?.body ?? "")).toEqual({ id, userId: "u-1", adId: "ad-1" });
    await page.waitForTimeout(200);
    expect(api.requests.filter((r) => r.path === "/event").length).toBe(1);
  });
});
