import { randomBytes } from "node:crypto";
import type { BrowserContext, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { DESKTOP_USER_AGENT, servePage, useBrowser } from "../support/browser.ts";
import { startTestSystem, useClosers } from "../support/system.ts";
import { waitFor } from "../support/wait.ts";

// The page tag's viewability measurement and clicks in Chromium (a desktop user agent), against the whole system:
// the MRC's rule (half of the ad in view in a visible tab for one continuous second; 30% for 970x250 and larger;
// two continuous seconds of play for video), each viewable and each click counted once per impression in
// GET /stats?event=…. The pages run on Playwright's clock: the tag's timers advance only when the test says, so
// "0.8 s" is 0.8 s whatever the machine's load.

const browser = useBrowser();
const closers = useClosers();
const run = randomBytes(3).toString("hex");
const ad = (name: string) => `view-${run}-${name}`;
let api: string;
/** Where clicks go: a page of the test's own, on a host CLICK_DOMAINS allows. */
let landing: string;

beforeAll(async () => {
  const site = await servePage("<!doctype html><title>landing</title><p>the advertiser's page");
  closers.push(() => site.close());
  landing = `${site.origin}/`;
  ({ api } = await startTestSystem("view", closers, undefined, { CLICK_DOMAINS: "127.0.0.1" }));
});

async function newContext(): Promise<BrowserContext> {
  const context = await browser().newContext({ userAgent: DESKTOP_USER_AGENT, viewport: { width: 1280, height: 720 } });
  closers.push(() => context.close());
  return context;
}

/** Marks the ad `#ad` with the test's own observer, which reports after the tag's (created first): see `ratio`. */
const WATCH = `(() => {
  window.ratio = -1;
  new IntersectionObserver((entries) => { for (const e of entries) window.ratio = e.isIntersecting ? e.intersectionRatio : 0; },
    { threshold: [0, 0.3, 0.35, 0.5, 1] }).observe(document.getElementById("ad"));
})()`;

interface AdPage {
  page: Page;
  /** The events of the ad's impression the tag sent, by kind, in order. */
  sent: string[];
  /** Advances the page's clock: the tag's timers fire as they would over that time. */
  runFor(ms: number): Promise<void>;
  /** Until the tag's observer has seen the ad at this ratio (ours reports after it). */
  seen(ratio: (r: number) => boolean): Promise<void>;
}

/**
 * A publisher's page on its own origin with `body` (an element `#ad`), the tag loaded, the page's clock under the
 * test's control, and `impressions.track` called for the ad with `options` (a JS object literal; the element is
 * `#ad`).
 */
async function adPage(adId: string, body: string, options = ""): Promise<AdPage> {
  const site = await servePage(`<!doctype html><body style="margin:0">${body}<script src="${api}/sdk.js"></script>`);
  closers.push(() => site.close());
  const page = await (await newContext()).newPage();
  const sent: string[] = [];
  page.on("request", (request) => {
    const body = request.postData();
    if (body?.includes(adId)) sent.push(JSON.parse(body).kind ?? "impression");
  });
  await page.clock.install();
  await page.goto(site.origin);
  // From here the page's time moves only when the test says (runFor).
  await page.clock.pauseAt(Date.now() + 60_000);
  await page.evaluate(
    `impressions.track({ adId: ${JSON.stringify(adId)}, element: document.getElementById("ad")${options ? `, ${options}` : ""} })`,
  );
  await page.evaluate(WATCH);
  return {
    page,
    sent,
    runFor: (ms) => page.clock.runFor(ms),
    seen: async (ratio) => {
      await waitFor("the ad's ratio in view", 10_000, async () =>
        ratio(await page.evaluate<number>("ratio")) ? true : undefined,
      );
    },
  };
}

/** GET /stats?event=kind for these ads, once each has at least its count; the caller checks they are exact. */
async function counted(kind: string, expected: Record<string, number>): Promise<Record<string, number>> {
  const query = new URLSearchParams({ timeWindowMinutes: "10", event: kind });
  for (const adId of Object.keys(expected)) query.append("adId", adId);
  return waitFor(`${kind} to reach ${JSON.stringify(expected)}`, 30_000, async () => {
    const counts = (await (await fetch(`${api}/stats?${query}`)).json()) as Record<string, number>;
    return Object.entries(expected).every(([adId, n]) => (counts[adId] ?? 0) >= n) ? counts : undefined;
  });
}

/** Until the worker group has no lag: every event sent so far is counted or dropped. */
function drained(): Promise<true> {
  return waitFor("the worker group's lag to reach 0", 30_000, async () =>
    /^impressions_consumer_lag_total\{[^}]*\} 0$/m.test(await (await fetch(`${api}/metrics`)).text())
      ? true
      : undefined,
  );
}

const AD_300x250 = `<div id="ad" style="width:300px;height:250px;background:#c33"></div><div style="height:3000px"></div>`;
const OUT_OF_VIEW = "window.scrollTo(0, 2000)";
const BACK_IN_VIEW = "window.scrollTo(0, 0)";
/** Headless Chromium never hides a tab it shows, so a hidden tab's state is what the page is told. */
const setVisibility = (state: "hidden" | "visible") =>
  `Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "${state}" });
   document.dispatchEvent(new Event("visibilitychange"));`;

describe("viewability, measured by the tag in Chromium", () => {
  it("counts an ad in view for 1.2 s as viewable, once, and not one in view for 0.8 s", async () => {
    const long = await adPage(ad("1.2s"), AD_300x250);
    await long.seen((r) => r === 1);
    await long.runFor(999);
    expect(long.sent).toEqual(["impression"]);
    await long.runFor(201);
    await waitFor("the viewable beacon", 10_000, () => (long.sent.includes("viewable") ? true : undefined));
    // Out of view and back, for long: still one viewable per impression.
    await long.page.evaluate(OUT_OF_VIEW);
    await long.seen((r) => r === 0);
    await long.page.evaluate(BACK_IN_VIEW);
    await long.seen((r) => r === 1);
    await long.runFor(5_000);

    const short = await adPage(ad("0.8s"), AD_300x250);
    await short.seen((r) => r === 1);
    await short.runFor(800);
    await short.page.evaluate(OUT_OF_VIEW);
    await short.seen((r) => r === 0);
    await short.runFor(5_000);
    // In view again for 0.8 s: continuous time, not a sum.
    await short.page.evaluate(BACK_IN_VIEW);
    await short.seen((r) => r === 1);
    await short.runFor(800);
    await short.page.evaluate(OUT_OF_VIEW);
    await short.seen((r) => r === 0);
    await short.runFor(5_000);

    expect(long.sent).toEqual(["impression", "viewable"]);
    expect(short.sent).toEqual(["impression"]);
    expect(await counted("impression", { [ad("1.2s")]: 1, [ad("0.8s")]: 1 })).toEqual({
      [ad("1.2s")]: 1,
      [ad("0.8s")]: 1,
    });
    await drained();
    expect(await counted("viewable", { [ad("1.2s")]: 1 })).toEqual({ [ad("1.2s")]: 1 });
  });

  it("does not count an ad in a background tab: one never shown, and one hidden before its second was up", async () => {
    // A tab that is opened and never shown (a background tab): it renders nothing, so nothing is ever in view.
    const context = await newContext();
    const site = await servePage(
      `<!doctype html><body style="margin:0">${AD_300x250}<script src="${api}/sdk.js"></script>
       <script>impressions.track({ adId: ${JSON.stringify(ad("background"))}, element: document.getElementById("ad") })</script>`,
    );
    closers.push(() => site.close());
    const opener = await context.newPage();
    const cdp = await context.newCDPSession(opener);
    const { targetInfo } = (await cdp.send("Target.getTargetInfo")) as { targetInfo: { browserContextId: string } };
    const session = await browser().newBrowserCDPSession();
    const { targetId } = (await session.send("Target.createTarget", {
      url: site.origin,
      browserContextId: targetInfo.browserContextId,
      hidden: true,
    } as never)) as { targetId: string };
    closers.push(() => session.send("Target.closeTarget", { targetId }));
    await counted("impression", { [ad("background")]: 1 });
    // Real time here (the tab is out of Playwright's reach): twice the second the rule asks for.
    await new Promise((resolve) => setTimeout(resolve, 2_000));

    // A shown tab that goes to the background after 0.6 s in view, for a second, and comes back for 0.6 s: not
    // one continuous second. Then 1.1 s visible in view: viewable.
    const hidden = await adPage(ad("hidden"), AD_300x250);
    await hidden.seen((r) => r === 1);
    await hidden.runFor(600);
    await hidden.page.evaluate(setVisibility("hidden"));
    await hidden.runFor(1_000);
    await hidden.page.evaluate(setVisibility("visible"));
    await hidden.runFor(600);
    expect(hidden.sent).toEqual(["impression"]);
    await hidden.runFor(500);
    await waitFor("the viewable beacon", 10_000, () => (hidden.sent.includes("viewable") ? true : undefined));

    await drained();
    expect(await counted("viewable", { [ad("hidden")]: 1 })).toEqual({ [ad("hidden")]: 1 });
    expect(await counted("impression", { [ad("background")]: 1 })).toMatchObject({ [ad("background")]: 1 });
  });

  it("counts a 970x250 ad 35% in view for 1.1 s (30% suffices from 242,500 px), not a 300x250 one", async () => {
    // 35% of 250 px at the bottom of a 720 px viewport.
    const at = (width: number) =>
      `<div id="ad" style="position:absolute;top:${720 - 87.5}px;width:${width}px;height:250px;background:#36c"></div>
       <div style="height:3000px"></div>`;
    const large = await adPage(ad("970x250"), at(970));
    const small = await adPage(ad("300x250"), at(300));
    for (const page of [large, small]) {
      await page.seen((r) => r > 0.34 && r < 0.36);
      await page.runFor(1_100);
    }
    await waitFor("the large ad's viewable beacon", 10_000, () => (large.sent.includes("viewable") ? true : undefined));
    await small.runFor(5_000);
    expect(small.sent).toEqual(["impression"]);
    await drained();
    expect(await counted("viewable", { [ad("970x250")]: 1 })).toEqual({ [ad("970x250")]: 1 });
  });

  it("counts a video ad only after 2 continuous seconds of play in view", async () => {
    // A real <video> playing a canvas's stream: muted, so it may play without a gesture.
    const video = await adPage(
      ad("video"),
      `<video id="ad" muted playsinline width="640" height="360"></video><canvas id="c" width="64" height="36"></canvas>
       <div style="height:3000px"></div>
       <script>
         const canvas = document.getElementById("c");
         canvas.getContext("2d").fillRect(0, 0, 64, 36);
         document.getElementById("ad").srcObject = canvas.captureStream();
       </script>`,
      "video: true",
    );
    await video.seen((r) => r === 1);
    // In view, not playing.
    await video.runFor(3_000);
    const play = async () => {
      await video.page.evaluate(`document.getElementById("ad").play()`);
      await waitFor("the video to play", 10_000, () =>
        video.page.evaluate<boolean>(`!document.getElementById("ad").paused || undefined`),
      );
    };
    await play();
    await video.runFor(1_500);
    await video.page.evaluate(`document.getElementById("ad").pause()`);
    await video.runFor(1_000);
    await play();
    await video.runFor(1_500);
    expect(video.sent).toEqual(["impression"]);
    await video.runFor(600);
    await waitFor("the video's viewable beacon", 10_000, () => (video.sent.includes("viewable") ? true : undefined));
    await drained();
    expect(await counted("viewable", { [ad("video")]: 1 })).toEqual({ [ad("video")]: 1 });
  });
});

describe("clicks", () => {
  it("counts a click once per impression: the tag's impressions.click, a link it wraps, and GET /click", async () => {
    const page = await adPage(
      ad("click"),
      `<div id="ad" style="width:300px;height:250px"><a id="link" href="#offer">offer</a></div>`,
    );
    const id = await page.page.evaluate<string>(
      `impressions.track({ adId: ${JSON.stringify(ad("clicked"))}, userId: "u-1", element: document.getElementById("ad") })`,
    );
    await page.page.evaluate(`impressions.click(${JSON.stringify(id)})`);
    await page.page.click("#link"); // the wrapped link: a click of both impressions of the element
    await page.page.click("#link");

    // The redirect, followed by the browser twice (a person clicking twice): one click counted.
    const redirect = new URLSearchParams({ id: `imp-${run}`, adId: ad("redirect"), url: landing });
    const person = await (await newContext()).newPage();
    for (let i = 0; i < 2; i++) {
      await person.goto(`${api}/click?${redirect}&cb=${10_000_000 + i}`);
      expect(person.url()).toBe(landing);
    }

    const expected = { [ad("clicked")]: 1, [ad("click")]: 1, [ad("redirect")]: 1 };
    await counted("click", expected);
    await drained();
    expect(await counted("click", expected)).toEqual(expected);
  });
});
