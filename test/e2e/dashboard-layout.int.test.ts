import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext, Page, Route } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/api/app.ts";
import { loadConfig } from "../../src/config.ts";
import { responses } from "../../src/stats/schemas.ts";
import { createClickHouse } from "../../src/storage/clickhouse.ts";
import { repoRoot } from "../../stack/paths.ts";
import { freePort } from "../../stack/process.ts";
import { useBrowser } from "../support/browser.ts";
import { notOnScreen, sidewaysOverflow } from "../support/layout.ts";
import { startTestSystem, useClosers } from "../support/system.ts";
import { waitFor } from "../support/wait.ts";

// What a person sees of the dashboard at a phone's, a tablet's, a laptop's and a desktop's width: with ad ids
// as ad servers make them (36-character UUIDs) and as long as the API allows (128 characters), and counts of
// 9 digits, every number must be on screen, uncovered and unclipped, and the page never wider than the screen.
// The counts come from answers in the API's own response schemas (no test can count 987 million impressions);
// the states with no data yet and with engines down are the real API's. Screenshots go to test-output/.

const OUTPUT = join(repoRoot, "test-output");
const WIDTHS = [
  { width: 375, height: 812 },
  { width: 768, height: 1024 },
  { width: 1280, height: 800 },
  { width: 1920, height: 1080 },
] as const;

/** The numbers a person reads: the pipeline's and the traffic's tiles, the totals, every count of the top-ads table. */
const NUMBERS = ".tiles dd:not(.note), #p-received, #p-counted, #top td.num";
const NUMBER_LABEL = "el.id || (el.closest('tr').dataset.ad.slice(0, 8) + '… ' + el.className)";

const browser = useBrowser();
const closers = useClosers();

/** An id of exactly 128 characters of the allowed ones (A-Z a-z 0-9 . _ : -), ending in `n`'s own digits. */
function longId(n: number): string {
  const head = `publisher.example:campaign-2026-q4:line-item_${n}:creative-`;
  const tail = `:${randomBytes(4).toString("hex")}-${String(n).padStart(3, "0")}`;
  return head + "x".repeat(128 - head.length - tail.length) + tail;
}

/** Ten ads, UUIDs and 128-character ids in turn, with 9-digit counts and reach. */
function bigAnswers() {
  const ads = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? randomUUID() : longId(i)));
  const counts = Object.fromEntries(ads.map((adId, i) => [adId, 987_654_321 - i * 87_654_321]));
  const reach = Object.fromEntries(
    ads.map((adId, i) => {
      const impressions = counts[adId] as number;
      const users = Math.floor(impressions / (1.37 + i));
      return [adId, { impressions, reach: users, frequency: impressions / users }];
    }),
  );
  const summary = Object.fromEntries(
    ads.map((adId, i) => {
      const impressions = counts[adId] as number;
      const viewable = Math.floor(impressions * 0.713);
      const clicks = Math.floor(impressions / (97 + i));
      // Even ads are video ads, the others have no start: no completion rate.
      const starts = i % 2 === 0 ? impressions : 0;
      const completes = Math.floor(starts * 0.6667);
      return [
        adId,
        {
          impressions,
          viewable,
          viewabilityRate: viewable / impressions,
          clicks,
          ctr: clicks / impressions,
          starts,
          completes,
          completionRate: starts === 0 ? null : completes / starts,
        },
      ];
    }),
  );
  const minutes = Array.from({ length: 61 }, (_, m) => new Date(Date.now() - (60 - m) * 60_000));
  const timeseries = Object.fromEntries(
    ads.slice(0, 5).map((adId, i) => [
      adId,
      minutes.map((at, m) => ({
        minute: new Date(Math.floor(at.getTime() / 60_000) * 60_000).toISOString(),
        impressions: Math.round(((counts[adId] as number) / 61) * (0.6 + 0.4 * Math.sin(m / 7 + i))),
      })),
    ]),
  );
  /** Readings 5 s apart: received and counted grow by 9,999,999 per second. */
  const start = Date.now();
  const pipeline = (reading: number) => {
    const grown = reading * 49_999_995;
    return {
      measuredAt: new Date(start + reading * 5000).toISOString(),
      received: 950_000_004 + grown,
      counted: 826_543_215 + grown,
      deadLetters: 1_234_567,
      lag: 12_345_678,
      duplicates: 950_000_004 - 826_543_215 - 1_234_567 - 12_345_678,
      newestEventTime: new Date(Date.now() - 123_456).toISOString(),
      freshnessMs: 123_456,
    };
  };
  // Every reason fired: a tile each, with 8- and 9-digit counts.
  const reasons = {
    prefetch: 123_456_789,
    headless: 98_765_432,
    bot: 876_543_210,
    non_browser: 12_345_678,
    ip_range: 23_456_789,
    activity: 34_567_890,
  };
  const invalid = Object.values(reasons).reduce((sum, n) => sum + n, 0);
  const traffic = { gross: 987_654_321 + invalid, net: 987_654_321, valid: 900_000_000, unclassified: 87_654_321 };
  const ivt = { total: { ...traffic, invalid, reasons }, ads: {} };
  return {
    ads,
    answers: {
      "/stats/ivt": responses.ivt.parse(ivt),
      "/stats": responses.counts.parse(counts),
      "/stats/reach": responses.reach.parse(reach),
      "/stats/summary": responses.summary.parse(summary),
      "/stats/timeseries": responses.timeSeries.parse(timeseries),
    } as Record<string, unknown>,
    pipeline: (reading: number) => responses.pipeline.parse(pipeline(reading)),
  };
}

/** Answers the page's /stats* requests with `answer(path)`; other requests go to the API. */
async function answerStats(context: BrowserContext, answer: (path: string, route: Route) => Promise<void>) {
  await context.route(
    (url) => url.pathname.startsWith("/stats"),
    (route) => answer(new URL(route.request().url()).pathname, route),
  );
}

/** A tab of its own at `viewport`; `open()` loads the dashboard of `api`. */
async function openPage(api: string, viewport: { width: number; height: number }) {
  const context = await browser().newContext({ viewport });
  closers.push(() => context.close());
  const problems: string[] = [];
  const page = await context.newPage();
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return { context, page, problems, open: () => page.goto(`${api}/`) };
}

async function screenshot(page: Page, name: string) {
  mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: join(OUTPUT, name), fullPage: true });
}

/** What each id of the table shows and holds: its text, its title, whether its end is on screen. */
function ids(page: Page): Promise<{ id: string; text: string; title: string; cardRight: number; right: number }[]> {
  return page.evaluate(`[...document.querySelectorAll("#top .ad .id")].map((el) => ({
    id: el.closest("tr").dataset.ad,
    text: el.textContent,
    title: el.title,
    right: el.getBoundingClientRect().right,
    cardRight: el.closest(".card").getBoundingClientRect().right,
  }))`);
}

/** The text a copy of the whole of `selector`'s first element puts on the clipboard. */
function copied(page: Page, selector: string): Promise<string> {
  return page.evaluate(`(() => {
    const el = document.querySelector(${JSON.stringify(selector)});
    const range = document.createRange();
    range.selectNodeContents(el);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    const event = new ClipboardEvent("copy", { clipboardData: new DataTransfer(), bubbles: true, cancelable: true });
    const taken = !el.dispatchEvent(event);
    return taken ? event.clipboardData.getData("text/plain") : getSelection().toString();
  })()`);
}

describe("the dashboard at 375, 768, 1280 and 1920 px", () => {
  let api: string;
  let down: string;
  beforeAll(async () => {
    // A real system with nothing sent to it yet: the page and its assets, and the state with no data.
    ({ api } = await startTestSystem("layout", closers));
    // A query API whose ClickHouse and Kafka are both away: nothing listens on their ports.
    const config = loadConfig({
      API_ROLE: "query",
      AUTH: "off",
      CLICKHOUSE_URL: `http://127.0.0.1:${await freePort()}`,
      KAFKA_BROKERS: `127.0.0.1:${await freePort()}`,
    });
    const clickhouse = createClickHouse(config);
    const app = await buildApp({ config, clickhouse, checks: {}, logger: false });
    closers.push(() => clickhouse.close());
    closers.push(() => app.close());
    down = await app.listen({ host: "127.0.0.1", port: 0 });
  });

  for (const viewport of WIDTHS) {
    it(`${viewport.width} px: every number on screen with 36- and 128-character ids and 9-digit counts`, async () => {
      const big = bigAnswers();
      let readings = 0;
      const { page, problems, context, open } = await openPage(api, viewport);
      await answerStats(context, async (path, route) => {
        const body = path === "/stats/pipeline" ? big.pipeline(readings++) : big.answers[path];
        await route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(body) });
      });
      await open();
      await page.locator("body[data-state=ready]").waitFor({ timeout: 15_000 });
      await page.locator("#top tbody tr").nth(9).waitFor();
      // A second reading gives the rates: a window change refreshes at once.
      await page.selectOption("#window", "15");
      await waitFor("the rates", 10_000, async () =>
        (await page.locator("#p-received-rate").textContent()) === "9,999,999" ? true : undefined,
      );

      // Before the checks: a failing run leaves the picture of what failed.
      await screenshot(page, `dashboard-${viewport.width}.png`);
      expect(await sidewaysOverflow(page)).toBe(0);
      expect(await page.locator("#top td.num").count()).toBe(70);
      expect(await page.locator("#p-lag").textContent()).toBe("12,345,678");
      expect(await page.locator("#top tbody tr:first-child td.impressions").textContent()).toBe("987,654,321");
      expect(await page.locator("#t-reasons dd").count()).toBe(6);
      expect(await page.locator("#t-gross").textContent()).toBe("2,156,790,109");
      expect(await page.locator("#top tbody tr:first-child td.viewable").textContent()).toBe("71.3%");
      expect(await page.locator("#top tbody tr:first-child td.completion").textContent()).toBe("66.7%");
      expect(await page.locator("#top tbody tr:nth-child(2) td.completion").textContent()).toBe("—");
      expect(await notOnScreen(page, NUMBERS, NUMBER_LABEL)).toEqual([]);

      // Ids: the whole id in the text (and so in a copy) and the title (a hover); cut in the middle to fit, so
      // their ends stay on screen; whole when focused.
      const shown = await ids(page);
      expect(shown.map((row) => row.id)).toEqual(big.ads);
      for (const row of shown) {
        expect(row.text).toBe(row.id);
        expect(row.title).toBe(row.id);
        expect(row.right).toBeLessThanOrEqual(row.cardRight);
      }
      expect(await notOnScreen(page, "#top .ad .id-end", "el.parentElement.title.slice(-12)")).toEqual([]);
      expect(await copied(page, "#top tbody tr:nth-child(2) .id")).toBe(big.ads[1]);
      await page.focus("#top tbody tr:nth-child(2) .id");
      expect(await notOnScreen(page, "#top .ad .id:focus", "'focused id'")).toEqual([]);
      await page.locator("#top tbody tr:nth-child(2) .id").blur();

      // The chart's legend: one short entry per ad, the whole id in its text and title, a few lines at most.
      const legend = await page.evaluate<{ labels: string[]; titles: string[]; height: number; widest: number }>(`({
        labels: [...document.querySelectorAll("#chart .u-legend .u-series .u-label")].slice(1).map((el) => el.textContent),
        titles: [...document.querySelectorAll("#chart .u-legend .u-series .u-label")].slice(1).map((el) => el.title),
        height: document.querySelector("#chart .u-legend").getBoundingClientRect().height,
        widest: Math.max(...[...document.querySelectorAll("#chart .u-legend .u-series")].map((el) => el.getBoundingClientRect().width)),
      })`);
      expect(legend.labels).toEqual(big.ads.slice(0, 5));
      expect(legend.titles).toEqual(big.ads.slice(0, 5));
      expect(legend.widest).toBeLessThanOrEqual(Math.min(260, viewport.width / 2));
      expect(legend.height).toBeLessThanOrEqual(viewport.width < 500 ? 110 : 60);
      expect(problems).toEqual([]);
    });
  }

  it("says there is no data yet, at a phone's width and a laptop's", async () => {
    for (const viewport of [WIDTHS[0], WIDTHS[2]]) {
      const { page, problems, open } = await openPage(api, viewport);
      await open();
      await page.locator("body[data-state=ready]").waitFor({ timeout: 15_000 });
      expect(await page.locator("#top-empty").textContent()).toMatch(/^No impressions in the last 60 min yet/);
      expect(await page.locator("#chart-empty").isVisible()).toBe(true);
      expect(await page.locator("#p-freshness").textContent()).toBe("—");
      expect(await page.locator("#p-counted").textContent()).toBe("0");
      expect(await page.locator("#p-freshness-note").textContent()).toMatch(/nothing counted yet/);
      expect(await page.locator("#t-gross").textContent()).toBe("0");
      expect(await page.locator("#t-invalid-share").textContent()).toBe("—");
      expect(await page.locator("#t-reasons").isVisible()).toBe(false);
      expect(await sidewaysOverflow(page)).toBe(0);
      expect(await notOnScreen(page, ".tiles dd, #p-received, #p-counted, #top-empty, #chart-empty")).toEqual([]);
      await screenshot(page, `dashboard-empty-${viewport.width}.png`);
      expect(problems).toEqual([]);
    }
  });

  it("says which engine is away, before any data and after", async () => {
    // Never reached: both cards say why they are empty.
    const first = await openPage(down, WIDTHS[0]);
    await first.open();
    await first.page.locator("body[data-state=down]").waitFor({ timeout: 15_000 });
    expect(await first.page.locator("#top-notice").textContent()).toMatch(/^ClickHouse is not answering/);
    expect(await first.page.locator("#pipeline-notice").textContent()).toMatch(/not answering/);
    expect(await first.page.locator("#traffic-notice").textContent()).toMatch(/^ClickHouse is not answering/);
    expect(await first.page.locator("#p-counted").textContent()).toBe("—");
    expect(await sidewaysOverflow(first.page)).toBe(0);
    expect(await notOnScreen(first.page, "#top-notice, #pipeline-notice, #traffic-notice")).toEqual([]);
    await screenshot(first.page, "dashboard-down-375.png");

    // Away after a first reading: the numbers stay, marked as from that reading.
    const big = bigAnswers();
    let away = false;
    const later = await openPage(api, WIDTHS[2]);
    await answerStats(later.context, async (path, route) => {
      if (away) {
        await route.fulfill({
          response: await route.fetch({ url: `${down}${path}${new URL(route.request().url()).search}` }),
        });
        return;
      }
      const body = path === "/stats/pipeline" ? big.pipeline(0) : big.answers[path];
      await route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(body) });
    });
    await later.open();
    await later.page.locator("#top tbody tr").nth(9).waitFor({ timeout: 15_000 });
    away = true;
    await later.page.selectOption("#window", "15");
    await later.page.locator("#top-notice:not([hidden])").waitFor({ timeout: 15_000 });
    expect(await later.page.locator("#top-notice").textContent()).toMatch(
      /^ClickHouse is not answering: these figures are from \d/,
    );
    expect(await later.page.locator("#top").getAttribute("class")).toContain("stale");
    expect(await later.page.locator("#top tbody tr").count()).toBe(10);
    expect(await notOnScreen(later.page, NUMBERS, NUMBER_LABEL)).toEqual([]);
    await screenshot(later.page, "dashboard-down-1280.png");
    expect([...first.problems, ...later.problems]).toEqual([]);
  });
});
