import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { DESKTOP_USER_AGENT, useBrowser } from "../support/browser.ts";
import { startTestSystem, useClosers } from "../support/system.ts";
import { waitFor } from "../support/wait.ts";

// A video ad as players meet it: a VAST document whose <Impression> and <Tracking> URLs are the API's pixel with
// the kind and the macros [CACHEBUSTING] and [TIMESTAMP], played in Chromium through @dailymotion/vast-client (a
// real VAST client from npm, its browser build served from node_modules), which substitutes the macros and fires
// the URLs. Each event is counted exactly once per impression id, a second player firing them all again included.

const browser = useBrowser();
const closers = useClosers();
const run = randomBytes(3).toString("hex");
const AD = `vast-${run}`;
const IMPRESSION = `vimp-${run}`;
const KINDS = ["start", "firstQuartile", "midpoint", "thirdQuartile", "complete"] as const;
let api: string;
let site: string;

/** The browser build of the VAST client (an ES module), read from the installed package. */
const VAST_CLIENT = readFileSync(
  createRequire(import.meta.url).resolve("@dailymotion/vast-client/dist/vast-client.js"),
  "utf8",
);

/** The VAST 4 document an ad server would answer for this impression: its id is in every URL. */
function vastDocument(): string {
  const pixel = (kind?: string) => {
    const params = `id=${IMPRESSION}&amp;adId=${AD}${kind ? `&amp;kind=${kind}` : ""}`;
    // Macros as ad servers write them: a cachebuster under several names, and the time.
    return `<![CDATA[${api}/pixel.gif?${params.replaceAll("&amp;", "&")}&cb=[CACHEBUSTING]&ord=[CACHEBUSTING]&t=[TIMESTAMP]]]>`;
  };
  return `<?xml version="1.0" encoding="UTF-8"?>
<VAST version="4.1">
  <Ad id="${AD}">
    <InLine>
      <AdSystem>test</AdSystem>
      <AdTitle>spring</AdTitle>
      <Impression id="imp">${pixel()}</Impression>
      <Creatives>
        <Creative id="c1">
          <Linear>
            <Duration>00:00:20</Duration>
            <TrackingEvents>
              ${KINDS.map((kind) => `<Tracking event="${kind}">${pixel(kind)}</Tracking>`).join("\n              ")}
            </TrackingEvents>
            <MediaFiles>
              <MediaFile delivery="progressive" type="video/webm" width="640" height="360">${site}/ad.webm</MediaFile>
            </MediaFiles>
          </Linear>
        </Creative>
      </Creatives>
    </InLine>
  </Ad>
</VAST>`;
}

/** The player's page: loads the VAST document, then plays the ad's 20 s through a VASTTracker. */
const PLAYER = `<!doctype html><script type="module">
  import { VASTClient, VASTTracker } from "/vast-client.js";
  window.play = async () => {
    const client = new VASTClient();
    const response = await client.get(location.origin + "/vast.xml");
    const ad = response.ads[0];
    const creative = ad.creatives.find((c) => c.type === "linear");
    const tracker = new VASTTracker(client, ad, creative);
    tracker.trackImpression();
    // A player reports its position as the video plays; the tracker fires start and each quartile once.
    for (const seconds of [0.5, 2, 5, 5.5, 9, 10, 12, 15, 17, 19.5]) tracker.setProgress(seconds);
    tracker.complete();
    return { duration: creative.duration, impressions: ad.impressionURLTemplates.length };
  };
  window.ready = true;
</script>`;

beforeAll(async () => {
  ({ api } = await startTestSystem("vast", closers));
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://host").pathname;
    res.setHeader("access-control-allow-origin", "*");
    if (path === "/vast-client.js") res.writeHead(200, { "content-type": "text/javascript" }).end(VAST_CLIENT);
    else if (path === "/vast.xml") res.writeHead(200, { "content-type": "application/xml" }).end(vastDocument());
    else if (path === "/") res.writeHead(200, { "content-type": "text/html" }).end(PLAYER);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  site = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closers.push(
    () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  );
});

async function counts(kind: string): Promise<number> {
  const res = await fetch(`${api}/stats?timeWindowMinutes=10&event=${kind}&adId=${AD}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as Record<string, number>)[AD] ?? 0;
}

describe("a VAST ad played through @dailymotion/vast-client in Chromium", () => {
  it("fires <Impression> and each quartile with its macros substituted, and each is counted exactly once", async () => {
    const context = await browser().newContext({ userAgent: DESKTOP_USER_AGENT });
    closers.push(() => context.close());
    const page = await context.newPage();
    const pixels: { url: URL; status: number }[] = [];
    page.on("response", (response) => {
      const url = new URL(response.url());
      if (url.pathname === "/pixel.gif") pixels.push({ url, status: response.status() });
    });
    await page.goto(site);
    await waitFor("the player's module", 10_000, () => page.evaluate<boolean | undefined>("window.ready"));

    // Two players of the same impression (a page reloaded, a retry): every URL fired twice.
    for (let player = 0; player < 2; player++) {
      expect(await page.evaluate("play()")).toEqual({ duration: 20, impressions: 1 });
    }
    const fired = await waitFor("12 pixels answered", 15_000, () => (pixels.length >= 12 ? pixels : undefined));

    expect(fired.map((p) => p.status)).toEqual(Array(12).fill(200));
    // Each player fires the impression and every quartile once (answers may come in any order).
    const kinds = fired.map((p) => p.url.searchParams.get("kind") ?? "impression");
    expect(kinds.sort()).toEqual([...["impression", ...KINDS], ...["impression", ...KINDS]].sort());
    for (const { url } of fired) {
      // The library substituted the macros: 8 digits, and an ISO 8601 time (URL-encoded) with its offset.
      expect(url.searchParams.get("cb")).toMatch(/^\d{8}$/);
      expect(url.searchParams.get("ord")).toMatch(/^\d{8}$/);
      expect(url.searchParams.get("t")).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(url.search).not.toContain("[");
    }

    for (const kind of ["impression", ...KINDS]) {
      expect(
        await waitFor(`${kind} counted`, 30_000, async () => ((await counts(kind)) >= 1 ? counts(kind) : undefined)),
      ).toBe(1);
    }
    // Every copy has been handled by now (the worker drains in order): still once each.
    await waitFor("the worker group's lag to reach 0", 30_000, async () =>
      /^impressions_consumer_lag_total\{[^}]*\} 0$/m.test(await (await fetch(`${api}/metrics`)).text())
        ? true
        : undefined,
    );
    for (const kind of ["impression", ...KINDS]) expect(await counts(kind), kind).toBe(1);
    const summary = (await (await fetch(`${api}/stats/summary?timeWindowMinutes=10&adId=${AD}`)).json()) as Record<
      string,
      unknown
    >;
    expect(summary[AD]).toMatchObject({ impressions: 1, starts: 1, completes: 1, completionRate: 1 });
  });
});
