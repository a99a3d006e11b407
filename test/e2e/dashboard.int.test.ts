import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContextOptions, Page, Request } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import type { Impression } from "../../src/impression/fields.ts";
import { repoRoot } from "../../stack/paths.ts";
import { useBrowser } from "../support/browser.ts";
import { makeImpression } from "../support/impressions.ts";
import { runKeysCli } from "../support/keys.ts";
import { startTestSystem, useClosers } from "../support/system.ts";
import { waitFor } from "../support/wait.ts";

// The dashboard (GET /) in headless Chromium against the whole system: the API (role all) and a worker on a
// topic, group and database of their own, fed a known set of impressions. What the page shows must be what
// the API answers, loaded from the API's origin only; screenshots go to test-output/ (git-ignored).

const OUTPUT = join(repoRoot, "test-output");
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 900 } };
const PHONE: BrowserContextOptions = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
};

const browser = useBrowser();
const closers = useClosers();

interface System {
  api: string;
  queryHeaders: Record<string, string>;
  ingestHeaders: Record<string, string>;
}

/** The system of test/support/system.ts, with the headers its keys (if any) are sent with. */
async function startSystem(keys?: { file: string; queryKey: string; ingestKey: string }): Promise<System> {
  const { api } = await startTestSystem("dash", closers, keys?.file);
  return {
    api,
    queryHeaders: keys ? { authorization: `Bearer ${keys.queryKey}` } : {},
    ingestHeaders: keys ? { authorization: `Bearer ${keys.ingestKey}` } : {},
  };
}

async function get<T>(system: System, path: string): Promise<T> {
  const response = await fetch(`${system.api}${path}`, { headers: system.queryHeaders });
  expect(response.status, path).toBe(200);
  return (await response.json()) as T;
}

interface Pipeline {
  received: number;
  counted: number;
  deadLetters: number;
  lag: number;
  duplicates: number;
}

/**
 * A known set: six ads with 6, 4, 3, 2, 1 and 1 impressions, from a few users each, sent by POST /events;
 * then `copies` of them again (a sender's retries), which the worker drops. Resolves once all is counted.
 */
async function feed(system: System, copies = 3) {
  const run = randomBytes(3).toString("hex");
  const sizes = [6, 4, 3, 2, 1, 1];
  const events: Impression[] = sizes.flatMap((n, ad) =>
    Array.from({ length: n }, (_, i) =>
      makeImpression(run, { adId: `ad-${run}-${ad}`, userId: `u-${run}-${i % 3}`, ts: Date.now() - (i + 1) * 60_000 }),
    ),
  );
  // What advertisers pay for: four of the first ad's impressions viewable, one of them clicked.
  const first = events.slice(0, 4);
  events.push(...first.map((e) => ({ ...e, kind: "viewable" as const })), {
    ...(first[0] as Impression),
    kind: "click",
  });
  for (const body of [events, events.slice(0, copies)]) {
    const response = await fetch(`${system.api}/events`, {
      method: "POST",
      headers: { ...system.ingestHeaders, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(202);
  }
  const total = events.length;
  /** The impressions alone (what /stats/ivt counts), without the viewable and click events. */
  const impressions = sizes.reduce((sum, n) => sum + n, 0);
  const pipeline = await waitFor("the worker to count every event and commit", 30_000, async () => {
    const p = await get<Pipeline>(system, "/stats/pipeline");
    return p.counted === total && p.lag === 0 ? p : undefined;
  });
  expect(pipeline).toMatchObject({ received: total + copies, counted: total, deadLetters: 0, duplicates: copies });
  return { run, total, impressions, copies };
}

/** A dashboard tab in a fresh context, recording every request it makes and every error it reports. */
async function openDashboard(system: System, options: BrowserContextOptions) {
  const context = await browser().newContext(options);
  closers.push(() => context.close());
  const page = await context.newPage();
  const requests: Request[] = [];
  const problems: string[] = [];
  page.on("request", (request) => requests.push(request));
  page.on("requestfailed", (request) => problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`));
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") problems.push(message.text());
  });
  await page.goto(`${system.api}/`);
  return { page, requests, problems };
}

interface Shown {
  top: { adId: string; impressions: number; reach: number; viewable: string; clicks: number }[];
  pipeline: Record<string, string>;
  chartSeries: string[];
}

/** What the page shows: its table's rows, its pipeline tiles' values, its chart's legend. */
function shown(page: Page): Promise<Shown> {
  return page.evaluate(`(() => ({
    top: [...document.querySelectorAll("#top tbody tr")].map((tr) => ({
      adId: tr.dataset.ad,
      impressions: Number(tr.querySelector(".impressions").dataset.value),
      reach: Number(tr.querySelector(".reach").dataset.value),
      viewable: tr.querySelector(".viewable").dataset.value,
      clicks: Number(tr.querySelector(".clicks").dataset.value),
    })),
    pipeline: Object.fromEntries(
      [...document.querySelectorAll(".pipeline [id^=p-]")].map((el) => [el.id, el.dataset.value ?? el.textContent]),
    ),
    chartSeries: [...document.querySelectorAll("#chart .u-legend .u-series .u-label")].map((el) => el.textContent).slice(1),
  }))()`);
}

/** Until the page shows `rows` ads: its first answers have arrived and been drawn. */
async function untilShowing(page: Page, rows: number) {
  await page.locator("body[data-state=ready]").waitFor({ timeout: 15_000 });
  await page
    .locator("#top tbody tr")
    .nth(rows - 1)
    .waitFor({ timeout: 15_000 });
}

/** GET /stats, /stats/reach and /stats/summary for the window, as the page asks them (top 10), side by side. */
async function expectedTop(system: System, minutes: number) {
  const counts = await get<Record<string, number>>(system, `/stats?timeWindowMinutes=${minutes}&limit=10`);
  const query = new URLSearchParams({ timeWindowMinutes: String(minutes) });
  for (const adId of Object.keys(counts)) query.append("adId", adId);
  const reach = await get<Record<string, { reach: number }>>(system, `/stats/reach?${query}`);
  const summary = await get<Record<string, { viewabilityRate: number; clicks: number }>>(
    system,
    `/stats/summary?${query}`,
  );
  return Object.entries(counts)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))
    .map(([adId, impressions]) => ({
      adId,
      impressions,
      reach: reach[adId]?.reach ?? Number.NaN,
      viewable: String(summary[adId]?.viewabilityRate),
      clicks: summary[adId]?.clicks ?? Number.NaN,
    }));
}

function screenshot(page: Page, name: string) {
  mkdirSync(OUTPUT, { recursive: true });
  const path = join(OUTPUT, name);
  return page.screenshot({ path, fullPage: true }).then(() => {
    expect(statSync(path).size).toBeGreaterThan(10_000);
    return path;
  });
}

const otherOrigin = (system: System, requests: Request[]) =>
  requests.map((r) => r.url()).filter((url) => !url.startsWith(`${system.api}/`) && !url.startsWith("data:"));

describe("the dashboard in Chromium, against the whole system", () => {
  let system: System;
  let fed: Awaited<ReturnType<typeof feed>>;
  beforeAll(async () => {
    system = await startSystem();
    fed = await feed(system);
  });

  it("shows the top ads as GET /stats answers, the pipeline's totals, and a chart; nothing from elsewhere", async () => {
    const { page, requests, problems } = await openDashboard(system, DESKTOP);
    await untilShowing(page, 6);
    const seen = await shown(page);
    const top = await expectedTop(system, 60);
    expect(top.map((row) => row.impressions)).toEqual([6, 4, 3, 2, 1, 1]);
    expect(top.map((row) => [row.viewable, row.clicks])).toEqual([[String(4 / 6), 1], ...Array(5).fill(["0", 0])]);
    expect(seen.top).toEqual(top);
    expect(seen.chartSeries).toEqual(top.slice(0, 5).map((row) => row.adId));
    expect(seen.pipeline).toMatchObject({
      "p-received": String(fed.total + fed.copies),
      "p-counted": String(fed.total),
      "p-duplicates": String(fed.copies),
      "p-dead-letters": "0",
      "p-lag": "0",
    });
    expect(await page.locator("#p-freshness").textContent()).toMatch(/ (ms|s|min)$/);
    // The events came from a server without evidence about their viewers: all net, unclassified.
    const ivt = await get<{ total: { gross: number; net: number } }>(system, "/stats/ivt?timeWindowMinutes=60");
    expect(ivt.total).toMatchObject({ gross: fed.impressions, net: fed.impressions });
    expect(await page.locator("#t-gross").textContent()).toBe(String(fed.impressions));
    expect(await page.locator("#t-net").textContent()).toBe(String(fed.impressions));
    expect(await page.locator("#t-invalid-share").textContent()).toBe("0%");

    // It refreshes by itself within 5 s: the second reading gives the rates (nothing arrives: 0 per second).
    await waitFor("the second reading", 10_000, async () =>
      (await page.locator("#p-received-rate").textContent()) === "0" ? true : undefined,
    );
    expect(await page.locator("#p-counted-rate").textContent()).toBe("0");
    expect(await page.locator("#chart canvas").count()).toBeGreaterThan(0);
    await screenshot(page, "dashboard-desktop.png");

    expect(problems).toEqual([]);
    expect(otherOrigin(system, requests)).toEqual([]);
    expect(requests.some((r) => r.url() === `${system.api}/dashboard/uplot.iife.min.js`)).toBe(true);
  });

  it("changes window, and stops polling while paused", async () => {
    const { page, requests, problems } = await openDashboard(system, DESKTOP);
    await untilShowing(page, 6);
    await page.selectOption("#window", "15");
    // Events were sent 1 to 6 minutes before their send: all still in 15 minutes, with the same counts.
    await waitFor("the 15-minute answers to be drawn", 10_000, async () =>
      (await page.locator("#top-window").textContent()) === "last 15 min" ? true : undefined,
    );
    expect((await shown(page)).top).toEqual(await expectedTop(system, 15));
    expect(requests.some((r) => r.url().includes("/stats?timeWindowMinutes=15&limit=10"))).toBe(true);

    await page.click("#pause");
    expect(await page.locator("#live").textContent()).toBe("paused");
    const before = requests.length;
    await page.waitForTimeout(6_000);
    expect(requests.length).toBe(before);
    await page.click("#pause");
    await waitFor("a request after resuming", 5_000, () => (requests.length > before ? true : undefined));
    expect(problems).toEqual([]);
  });

  it("fits a phone-sized screen", async () => {
    const { page, requests, problems } = await openDashboard(system, PHONE);
    await untilShowing(page, 6);
    expect((await shown(page)).top).toEqual(await expectedTop(system, 60));
    // Nothing wider than the screen: no sideways scrolling of the page.
    const widths = await page.evaluate<{ page: number; screen: number }>(
      "({ page: document.documentElement.scrollWidth, screen: window.innerWidth })",
    );
    expect(widths.page).toBeLessThanOrEqual(widths.screen);
    await screenshot(page, "dashboard-phone.png");
    expect(problems).toEqual([]);
    expect(otherOrigin(system, requests)).toEqual([]);
  });

  // Last: it adds impressions to the set the tests above count.
  it("shows invalid traffic as GET /stats/ivt answers: gross, net, the invalid share and a tile per reason", async () => {
    // An ad server reporting its viewers: three crawlers and a headless browser, on an ad of their own.
    const adId = `ad-${fed.run}-ivt`;
    const viewers = ["curl/8.5.0", "Googlebot/2.1 (+http://www.google.com/bot.html)", "python-requests/2.31.0"];
    const headless =
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
    const events = [...viewers, headless].map((userAgent) => makeImpression(fed.run, { adId, userAgent }));
    const response = await fetch(`${system.api}/events`, {
      method: "POST",
      headers: { ...system.ingestHeaders, "content-type": "application/json" },
      body: JSON.stringify(events),
    });
    expect(response.status).toBe(202);
    const gross = fed.impressions + events.length;
    await waitFor("the worker to count the invalid events", 30_000, async () =>
      (await get<Pipeline>(system, "/stats/pipeline")).counted === fed.total + events.length ? true : undefined,
    );
    const ivt = await get<{ total: { gross: number; net: number; reasons: Record<string, number> } }>(
      system,
      "/stats/ivt?timeWindowMinutes=60",
    );
    expect(ivt.total).toMatchObject({ gross, net: fed.impressions, reasons: { bot: 3, headless: 1 } });

    const { page, problems } = await openDashboard(system, DESKTOP);
    await untilShowing(page, 6);
    await page.locator("#t-reason-bot").waitFor({ timeout: 15_000 });
    expect(await page.locator("#t-gross").textContent()).toBe(String(gross));
    expect(await page.locator("#t-net").textContent()).toBe(String(fed.impressions));
    expect(await page.locator("#t-invalid-share").textContent()).toBe(
      new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 }).format(4 / gross),
    );
    // A tile per reason, most first, in a person's words.
    expect(await page.locator("#t-reasons dt").allTextContents()).toEqual(["Bot", "Headless"]);
    expect(await page.locator("#t-reasons dd").allTextContents()).toEqual(["3", "1"]);
    // The top ads count net: the invalid ad is not among them.
    expect((await shown(page)).top.map((row) => row.adId)).not.toContain(adId);
    await screenshot(page, "dashboard-invalid-traffic.png");
    expect(problems).toEqual([]);
  });
});

describe("the dashboard with keys on (AUTH=required)", () => {
  let system: System;
  let queryKey: string;
  let keysFile: string;
  let run: string;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "dash-keys-"));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "keys.json");
    const ingestKey = runKeysCli(file, "create", "--scope", "ingest", "--name", "sender");
    queryKey = runKeysCli(file, "create", "--scope", "query", "--name", "dashboard");
    keysFile = file;
    system = await startSystem({ file, queryKey, ingestKey });
    ({ run } = await feed(system));
  });

  it("asks for the query key once, then shows the data; the key only ever travels in the Authorization header", async () => {
    const { page, requests, problems } = await openDashboard(system, PHONE);
    await page.locator("#key-form").waitFor({ state: "visible", timeout: 15_000 });
    expect(await page.locator("body").getAttribute("data-state")).toBe("key");

    // A wrong key is refused, and asked for again.
    await page.fill("#key", "imp_qry_not-a-key");
    await page.click("#key-form button[type=submit]");
    await waitFor("the refusal to be shown", 10_000, async () =>
      (await page.locator("#key-reason").textContent())?.includes("refused") ? true : undefined,
    );
    await page.locator("#key-form").waitFor({ state: "visible" });
    await screenshot(page, "dashboard-key-phone.png");

    await page.fill("#key", queryKey);
    await page.click("#key-form button[type=submit]");
    await untilShowing(page, 6);
    expect((await shown(page)).top).toEqual(await expectedTop(system, 60));
    expect(await page.evaluate("sessionStorage.getItem('impressions.queryKey')")).toBe(queryKey);

    // A reload in the same tab keeps the key: no second prompt.
    await page.reload();
    await untilShowing(page, 6);
    expect(await page.locator("#key-form").isVisible()).toBe(false);

    const data = requests.filter((r) => new URL(r.url()).pathname.startsWith("/stats"));
    expect(data.length).toBeGreaterThan(0);
    for (const request of requests) expect(request.url()).not.toContain(queryKey);
    const authorized = await Promise.all(data.map(async (r) => (await r.allHeaders()).authorization));
    expect(authorized.filter((header) => header === `Bearer ${queryKey}`).length).toBeGreaterThan(0);
    // The rest: the first requests, with no key yet, and those with the wrong key.
    expect(new Set(authorized.filter((header) => header !== `Bearer ${queryKey}`))).toEqual(
      new Set([undefined, "Bearer imp_qry_not-a-key"]),
    );
    // The 401s that made it ask are the browser's only complaints.
    expect(problems.filter((text) => !/status of 401/.test(text))).toEqual([]);
    expect(otherOrigin(system, requests)).toEqual([]);
  });

  it("with a key limited to some ads: shows only those, and says the pipeline's totals need another key", async () => {
    const tenantKey = runKeysCli(
      keysFile,
      "create",
      "--scope",
      "query",
      "--name",
      "tenant",
      "--ads",
      `ad-${run}-1,ad-${run}-4`,
    );
    // The API picks up the keys file's change within its polling interval.
    await waitFor("the tenant key to be known", 10_000, async () => {
      const response = await fetch(`${system.api}/stats?timeWindowMinutes=60`, {
        headers: { authorization: `Bearer ${tenantKey}` },
      });
      return response.status === 200 ? true : undefined;
    });
    const { page, problems } = await openDashboard(system, DESKTOP);
    await page.locator("#key-form").waitFor({ state: "visible", timeout: 15_000 });
    await page.fill("#key", tenantKey);
    await page.click("#key-form button[type=submit]");
    await untilShowing(page, 2);
    const seen = await shown(page);
    expect(seen.top.map((row) => row.adId)).toEqual([`ad-${run}-1`, `ad-${run}-4`]);
    expect(await page.locator("#pipeline-notice").textContent()).toContain("need a key without --ads");
    expect(await page.locator("#key-form").isVisible()).toBe(false);
    await screenshot(page, "dashboard-tenant-desktop.png");
    // The 401 before the key, and the pipeline's 403 for a key limited to some ads, are the only complaints.
    expect(problems.filter((text) => !/status of 40[13]/.test(text))).toEqual([]);
  });
});
