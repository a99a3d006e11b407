import { describe, expect, it } from "vitest";
import { type ClassifierOptions, type RequestFacts, TrafficClassifier } from "./classify.ts";
import { IpRanges } from "./ip-ranges.ts";

const CHROME =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const HEADLESS =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const APP = "Roku/DVP-12.0 (12.0.0.4182-88)";
const NOW = Date.UTC(2026, 11, 1, 10);

function classifier(options: Partial<ClassifierOptions> = {}) {
  return new TrafficClassifier({
    ipRanges: () => IpRanges.parse("198.51.100.0/24\n2001:db8:dc::/48", "test"),
    activityPerUser: 3,
    activityPerIp: 5,
    activityWindowMs: 60_000,
    ...options,
  });
}

/** A page's request: Origin and Sec-Fetch-*, a desktop browser, an address of no listed range. */
const page = (facts: Partial<RequestFacts> = {}): RequestFacts => ({
  fromViewer: true,
  pageSignals: true,
  userAgent: CHROME,
  ip: "203.0.113.9",
  prefetch: false,
  browserKey: false,
  ...facts,
});
/** A server's request for viewers: its own headers say nothing of them. */
const server = (facts: Partial<RequestFacts> = {}): RequestFacts => ({
  fromViewer: false,
  pageSignals: false,
  userAgent: undefined,
  ip: undefined,
  prefetch: false,
  browserKey: false,
  ...facts,
});
let user = 0;
const event = (fields: Record<string, unknown> = {}) => ({ adId: "ad-1", userId: `u-${user++}`, ...fields });

describe("TrafficClassifier", () => {
  it("labels a desktop browser's impression valid, with the viewer's network", () => {
    const c = classifier();
    expect(c.stamp(c.request(page()), event(), NOW)).toEqual({ traffic: "valid", ipPrefix: "203.0.113.0/24" });
  });

  it("takes each reason alone", () => {
    const c = classifier();
    const label = (facts: Partial<RequestFacts>, fields: Record<string, unknown> = {}) =>
      c.stamp(c.request(page(facts)), event(fields), NOW)?.traffic;
    expect(label({ prefetch: true })).toBe("prefetch");
    expect(label({ userAgent: HEADLESS })).toBe("headless");
    expect(label({}, { webdriver: true })).toBe("headless");
    expect(label({}, { webdriver: false })).toBe("valid");
    expect(label({ userAgent: GOOGLEBOT })).toBe("bot");
    expect(label({ userAgent: "curl/8.5.0" })).toBe("bot");
    expect(label({ browserKey: true, pageSignals: false })).toBe("non_browser");
    expect(label({ browserKey: true, userAgent: APP })).toBe("non_browser");
    expect(label({ browserKey: true, userAgent: undefined })).toBe("non_browser");
    expect(label({ browserKey: true })).toBe("valid");
    expect(label({ ip: "198.51.100.77" })).toBe("ip_range");
    expect(label({ ip: "2001:db8:dc:1::5" })).toBe("ip_range");
    expect(label({ ip: "::ffff:198.51.100.77" })).toBe("ip_range");
  });

  it("gives the first reason that fires, in the documented order", () => {
    const c = classifier();
    const label = (facts: Partial<RequestFacts>, fields: Record<string, unknown> = {}) =>
      c.stamp(c.request(page(facts)), event(fields), NOW)?.traffic;
    const everything = {
      prefetch: true,
      userAgent: HEADLESS,
      browserKey: true,
      pageSignals: false,
      ip: "198.51.100.1",
    };
    expect(label(everything)).toBe("prefetch");
    expect(label({ ...everything, prefetch: false })).toBe("headless");
    expect(label({ ...everything, prefetch: false, userAgent: GOOGLEBOT })).toBe("bot");
    expect(label({ ...everything, prefetch: false, userAgent: GOOGLEBOT }, { webdriver: true })).toBe("headless");
    expect(label({ ...everything, prefetch: false, userAgent: CHROME })).toBe("non_browser");
    expect(label({ ip: "198.51.100.1" })).toBe("ip_range");
  });

  it("leaves a server's event without evidence unclassified (no stamp), and classifies one with evidence", () => {
    const c = classifier();
    const signals = c.request(server());
    expect(c.stamp(signals, event(), NOW)).toBeUndefined();
    expect(c.stamp(signals, event({ userAgent: CHROME, ip: "203.0.113.9" }), NOW)).toEqual({
      traffic: "valid",
      ipPrefix: "203.0.113.0/24",
    });
    expect(c.stamp(signals, event({ userAgent: GOOGLEBOT }), NOW)).toEqual({ traffic: "bot" });
    expect(c.stamp(signals, event({ ip: "198.51.100.1" }), NOW)).toEqual({
      traffic: "ip_range",
      ipPrefix: "198.51.100.0/24",
    });
    expect(c.stamp(signals, event({ webdriver: true }), NOW)).toEqual({ traffic: "headless" });
  });

  it("never takes a page's word for its viewer: the request's headers decide", () => {
    const c = classifier();
    const fromPage = event({ userAgent: GOOGLEBOT, ip: "198.51.100.1" });
    expect(c.stamp(c.request(page()), fromPage, NOW)).toEqual({ traffic: "valid", ipPrefix: "203.0.113.0/24" });
  });

  it("labels every event of a server's request on a --browser key non_browser, or a reason before it", () => {
    const c = classifier();
    const signals = c.request(server({ browserKey: true }));
    expect(c.stamp(signals, event(), NOW)).toEqual({ traffic: "non_browser" });
    expect(c.stamp(signals, event({ userAgent: CHROME }), NOW)).toEqual({ traffic: "non_browser" });
    expect(c.stamp(signals, event({ userAgent: GOOGLEBOT }), NOW)).toEqual({ traffic: "bot" });
  });

  describe("the activity rule", () => {
    it("lets the limit of one ad to one user through, flags the next, and counts each ad and user apart", () => {
      const c = classifier();
      const signals = c.request(server());
      const seen = (userId: string, adId = "ad-1", at = NOW) =>
        c.stamp(signals, { adId, userId, userAgent: CHROME }, at)?.traffic;
      expect([seen("u"), seen("u"), seen("u")]).toEqual(["valid", "valid", "valid"]);
      expect(seen("u")).toBe("activity");
      expect(seen("u", "ad-2")).toBe("valid");
      expect(seen("v")).toBe("valid");
      // Windows of event time are aligned to the epoch: NOW starts one, the next starts 60 s later.
      expect(seen("u", "ad-1", NOW + 59_999)).toBe("activity");
      expect(seen("u", "ad-1", NOW + 60_000)).toBe("valid");
    });

    it("lets the limit of one ad from one client IP through, whatever the users, and flags the next", () => {
      const c = classifier();
      const fromIp = (ip: string) => c.stamp(c.request(page({ ip })), event(), NOW)?.traffic;
      expect([1, 2, 3, 4, 5].map(() => fromIp("203.0.113.50"))).toEqual(Array(5).fill("valid"));
      expect(fromIp("203.0.113.50")).toBe("activity");
      expect(fromIp("203.0.113.51")).toBe("valid");
      // One IPv6 client is its /64.
      expect([1, 2, 3, 4, 5].map((i) => fromIp(`2001:db8:1:2::${i}`))).toEqual(Array(5).fill("valid"));
      expect(fromIp("2001:db8:1:2:ffff::1")).toBe("activity");
    });

    it("counts on event time: a server's backlog sent at once is not a burst", () => {
      const c = classifier();
      const signals = c.request(server());
      const backlog = [0, 1, 2, 3, 4, 5].map((hour) =>
        c.stamp(signals, { adId: "ad-1", userId: "u-backlog", userAgent: CHROME, ts: NOW - hour * 3_600_000 }, NOW),
      );
      expect(backlog.map((s) => s?.traffic)).toEqual(Array(6).fill("valid"));
    });

    it("counts each kind of event apart, and a viewer not identified by its client IP only", () => {
      const c = classifier();
      const signals = c.request(server());
      const seen = (kind?: "viewable" | "click", userId: string | undefined = "u") =>
        c.stamp(signals, { adId: "ad-1", userAgent: CHROME, ...(userId && { userId }), ...(kind && { kind }) }, NOW)
          ?.traffic;
      // Three impressions, each viewable and clicked: the limit of each kind, not nine impressions.
      expect([1, 2, 3].flatMap(() => [seen(), seen("viewable"), seen("click")])).toEqual(Array(9).fill("valid"));
      expect([seen("click"), seen("viewable"), seen()]).toEqual(["activity", "activity", "activity"]);
      // No userId, no client address: no counter applies.
      expect([1, 2, 3, 4, 5].map(() => seen(undefined, ""))).toEqual(Array(5).fill("valid"));
      const fromIp = () => c.stamp(c.request(page({ ip: "203.0.113.77" })), { adId: "ad-1" }, NOW)?.traffic;
      expect([1, 2, 3, 4, 5, 6].map(fromIp)).toEqual([...Array(5).fill("valid"), "activity"]);
    });

    it("counts only what no earlier rule took", () => {
      const c = classifier();
      const signals = c.request(server());
      for (let i = 0; i < 10; i++) c.stamp(signals, { adId: "ad-1", userId: "u-bot", userAgent: GOOGLEBOT }, NOW);
      expect(c.stamp(signals, { adId: "ad-1", userId: "u-bot", userAgent: CHROME }, NOW)?.traffic).toBe("valid");
    });
  });
});
