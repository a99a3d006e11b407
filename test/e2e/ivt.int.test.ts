import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser } from "playwright-core";
import { describe, expect, it } from "vitest";
import { DESKTOP_USER_AGENT, openUnattached, servePage, useBrowser } from "../support/browser.ts";
import { startTestSystem, useClosers } from "../support/system.ts";
import { waitFor } from "../support/wait.ts";

// Invalid traffic as real headless Chromium produces it, through the tag and the whole system (API, Kafka, a
// worker, Valkey, ClickHouse) to GET /stats/ivt: a headless browser, a prefetched pixel and a prerendered page.

const desktop = useBrowser();
/** Chromium as it runs headless by default: HeadlessChrome in its user agent, navigator.webdriver true. */
const headless = useBrowser({ asHeadless: true });
const closers = useClosers();
const run = randomBytes(3).toString("hex");
const ad = (name: string) => `ivt-${run}-${name}`;

interface Breakdown {
  gross: number;
  net: number;
  invalid: number;
  reasons: Record<string, number>;
}

async function ivt(api: string, adIds: string[]): Promise<Record<string, Breakdown>> {
  const query = new URLSearchParams({ timeWindowMinutes: "5" });
  for (const adId of adIds) query.append("adId", adId);
  const res = await fetch(`${api}/stats/ivt?${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { ads: Record<string, Breakdown> }).ads;
}

/** Polls GET /stats/ivt until each ad has at least its expected gross count. */
function counted(api: string, expected: Record<string, number>): Promise<Record<string, Breakdown>> {
  return waitFor(`GET /stats/ivt to reach ${JSON.stringify(expected)}`, 30_000, async () => {
    const ads = await ivt(api, Object.keys(expected));
    return Object.entries(expected).every(([adId, n]) => (ads[adId]?.gross ?? 0) >= n) ? ads : undefined;
  });
}

/** Until GET /metrics shows no lag: the worker has handled everything the API wrote. */
function drained(api: string): Promise<true> {
  return waitFor("the worker group's lag to reach 0", 30_000, async () => {
    const text = await (await fetch(`${api}/metrics`)).text();
    return /^impressions_consumer_lag_total\{[^}]*\} 0$/m.test(text) ? true : undefined;
  });
}

/** A publisher's page with the tag, in a new context of `browser`: impressions.track once it has loaded. */
async function trackIn(browser: Browser, api: string, adId: string, userAgent?: string): Promise<string> {
  const site = await servePage(`<!doctype html><script src="${api}/sdk.js"></script>`);
  const context = await browser.newContext(userAgent === undefined ? {} : { userAgent });
  closers.push(
    () => site.close(),
    () => context.close(),
  );
  const page = await context.newPage();
  await page.goto(site.origin);
  return page.evaluate(`impressions.track({ adId: ${JSON.stringify(adId)}, userId: "u-${run}" })`);
}

describe("invalid traffic from headless Chromium, through the tag and the whole system", () => {
  it("labels Chromium's headless impression headless, and the same one from a desktop browser valid", async () => {
    const { api } = await startTestSystem("ivt", closers);
    const headlessPage = await headless().newPage();
    const headlessUserAgent = await headlessPage.evaluate("navigator.userAgent");
    await headlessPage.close();
    expect(headlessUserAgent).toContain("HeadlessChrome");

    // As launched: its user agent and navigator.webdriver both say so.
    await trackIn(headless(), api, ad("headless"));
    // Its user agent alone (navigator.webdriver off), and navigator.webdriver alone (a desktop user agent).
    await trackIn(desktop(), api, ad("headless-ua"), headlessUserAgent as string);
    await trackIn(headless(), api, ad("webdriver"), DESKTOP_USER_AGENT);
    await trackIn(desktop(), api, ad("desktop"));

    const expected = { [ad("headless")]: 1, [ad("headless-ua")]: 1, [ad("webdriver")]: 1, [ad("desktop")]: 1 };
    const ads = await counted(api, expected);
    for (const name of ["headless", "headless-ua", "webdriver"]) {
      expect({ name, ...ads[ad(name)] }).toEqual({ name, ...headlessOnly });
    }
    expect(ads[ad("desktop")]).toMatchObject({ gross: 1, net: 1, invalid: 0, reasons: {} });
    // GET /stats counts net: the desktop impression only.
    const stats = await fetch(
      `${api}/stats?timeWindowMinutes=5&${Object.keys(expected)
        .map((a) => `adId=${a}`)
        .join("&")}`,
    );
    expect(await stats.json()).toEqual({ [ad("desktop")]: 1 });
  });

  it("labels a pixel the browser prefetches (Sec-Purpose: prefetch) prefetch", async () => {
    const { api } = await startTestSystem("ivt-prefetch", closers);
    const pixel = `${api}/pixel.gif?${new URLSearchParams({ id: `p-${run}`, adId: ad("prefetch"), userId: "u-1" })}`;
    const site = await servePage(`<!doctype html><link rel="prefetch" href="${pixel}">`);
    const context = await desktop().newContext();
    closers.push(
      () => site.close(),
      () => context.close(),
    );
    const page = await context.newPage();
    const sent = page.waitForRequest((request) => request.url() === pixel);
    await page.goto(site.origin);
    expect((await (await sent).allHeaders())["sec-purpose"]).toMatch(/^prefetch/);

    const ads = await counted(api, { [ad("prefetch")]: 1 });
    expect(ads[ad("prefetch")]).toMatchObject({ gross: 1, net: 0, invalid: 1, reasons: { prefetch: 1 } });
  });

  it("counts a page prerendered with Speculation Rules only once it is shown", async () => {
    const { api } = await startTestSystem("ivt-prerender", closers);
    // The publisher's site: a landing page that prerenders an article, then opens it when the test says so.
    let open = false;
    const seen: string[] = [];
    const landing = `<!doctype html>
      <script type="speculationrules">{"prerender":[{"source":"list","urls":["/article.html"]}]}</script>
      <a href="/article.html">the article</a>
      <script>setInterval(async () => {
        if ((await (await fetch("/open")).text()) === "yes") location.href = "/article.html";
      }, 200);</script>`;
    const article = `<!doctype html><script src="${api}/sdk.js"></script>
      <script>
        new Image().src = "/seen?prerendering=" + document.prerendering;
        impressions.track({ adId: ${JSON.stringify(ad("prerendered"))}, userId: "u-${run}" });
      </script>`;
    const site = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://host").pathname;
      if (path === "/seen") seen.push(req.url ?? "");
      if (path === "/open") return void res.writeHead(200).end(open ? "yes" : "no");
      const html = path === "/" ? landing : path === "/article.html" ? article : undefined;
      if (html === undefined) return void res.writeHead(204).end();
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    });
    await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
    closers.push(
      () =>
        new Promise((resolve) => {
          site.close(resolve);
          site.closeAllConnections();
        }),
    );
    const chromium = await openUnattached(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`);
    closers.push(() => chromium.close());

    // The article ran while prerendered: it reported so, and its tag ran impressions.track.
    await waitFor("the article to run prerendered", 30_000, () =>
      seen.find((url) => url.includes("prerendering=true")),
    );
    // Nothing was sent meanwhile: once the worker has handled all the API took, the ad has no impression at all.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await drained(api);
    expect(await ivt(api, [ad("prerendered")])).toEqual({});

    open = true;
    const ads = await counted(api, { [ad("prerendered")]: 1 });
    expect(ads[ad("prerendered")]).toMatchObject({ gross: 1, net: 1, invalid: 0 });
    await drained(api);
    expect((await ivt(api, [ad("prerendered")]))[ad("prerendered")]?.gross).toBe(1);
    expect(seen.every((url) => url.includes("prerendering=true"))).toBe(true);
  });
});

const headlessOnly = { gross: 1, net: 0, valid: 0, unclassified: 0, invalid: 1, reasons: { headless: 1 } };
