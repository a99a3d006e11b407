import { beforeAll, describe, expect, it } from "vitest";
import { insertImpressions, useTestDatabase } from "../../test/support/clickhouse.ts";
import { testConfig } from "../../test/support/config.ts";
import type { Impression } from "../impression/schema.ts";
import { seededRng } from "../load/random.ts";
import { countPerAd, reachPerAd, summaryPerAd, timeSeries } from "./queries.ts";
import { plainRows } from "./reader.ts";
import { MINUTE_MS } from "./window.ts";

/** The queries as they are, without the query routes' limits (src/stats/reader.int.test.ts covers those). */
const read = () => plainRows(db.clickhouse);

const inWindow = (now: number, minutes: number) => (e: Impression) => e.ts > now - minutes * MINUTE_MS && e.ts <= now;

function bruteCounts(events: Impression[], now: number, minutes: number, adIds: string[] = []) {
  const counts: Record<string, number> = {};
  for (const e of events.filter(inWindow(now, minutes))) {
    if (adIds.length > 0 && !adIds.includes(e.adId)) continue;
    if ((e.kind ?? "impression") !== "impression") continue;
    counts[e.adId] = (counts[e.adId] ?? 0) + 1;
  }
  return counts;
}

// Mid-minute, so both edges of every window cut a minute in two.
const now = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 30 * MINUTE_MS + 23_456;
const events: Impression[] = [];
/** Events of other kinds, of some of the impressions above (same id, ad and ts, or a little later). */
const others: Impression[] = [];
const db = useTestDatabase(() => testConfig());

beforeAll(async () => {
  const random = seededRng(42);
  // One viewer in eight is not identified: no userId.
  const add = (ts: number, adId: string, userId = `u${Math.floor(random() * 200)}`) =>
    events.push({ id: `e${events.length}`, ts, adId, ...(random() < 0.125 ? {} : { userId }) });
  // Random events over the last 26 hours and 10 minutes into the future (clock skew of senders).
  for (let i = 0; i < 20_000; i++)
    add(now - Math.floor(random() * 26 * 60 * MINUTE_MS) + 10 * MINUTE_MS, `ad${i % 37}`);
  // Events exactly on the edges of every window tested: start excluded, end included, after end excluded.
  for (const minutes of [1, 2, 60, 1440]) {
    add(now - minutes * MINUTE_MS, "edge-start");
    add(now - minutes * MINUTE_MS + 1, "edge-start-plus-1ms");
  }
  add(now, "edge-now");
  add(now + 1, "edge-future");
  // Only old events: absent from every window up to a day.
  add(now - 25 * 60 * MINUTE_MS, "old");
  // Viewable, clicked, and video events of some impressions, at their ts or up to 40 s later (across minutes).
  for (const e of events) {
    const later = (kind: Impression["kind"]) => ({ ...e, kind, ts: e.ts + Math.floor(random() * 40_000) });
    if (random() < 0.6) others.push(later("viewable"));
    if (random() < 0.05) others.push(later("click"));
    if (e.adId === "ad5" || e.adId === "ad6") {
      others.push(later("start"));
      if (random() < 0.7) others.push(later("complete"));
    }
  }
  // Several inserts leave several unmerged parts per minute in the rollup: sums must not trust merges.
  const all = [...events, ...others];
  for (let i = 0; i < all.length; i += 4_000) await insertImpressions(db.clickhouse, all.slice(i, i + 4_000));
});

describe("countPerAd", () => {
  it.each([1, 2, 5, 60, 120, 1439, 1440])("equals a brute-force count over (now - %i min, now]", async (minutes) => {
    const counts = await countPerAd(read(), { now, minutes, adIds: [] });
    expect(counts).toEqual(bruteCounts(events, now, minutes));
  });

  it("excludes an event exactly N minutes old, includes one at now, excludes the future", async () => {
    const counts = await countPerAd(read(), { now, minutes: 1, adIds: [] });
    expect(counts["edge-start"]).toBeUndefined();
    expect(counts["edge-start-plus-1ms"]).toBe(1);
    expect(counts["edge-now"]).toBe(1);
    expect(counts["edge-future"]).toBeUndefined();
    expect(counts.old).toBeUndefined();
  });

  it("is exact when now falls on a minute boundary or just before one", async () => {
    for (const at of [now - 23_456, now - 23_457, now + 36_543]) {
      expect(await countPerAd(read(), { now: at, minutes: 60, adIds: [] })).toEqual(bruteCounts(events, at, 60));
    }
  });

  it("is exact for N=1 (one range of the raw table) wherever now falls in the minute", async () => {
    // now + 36_543 ends on …:59.999, the one N=1 window that holds a whole minute (read from the rollup).
    for (const at of [now, now - 23_456, now - 23_457, now - 23_455, now + 36_543]) {
      expect(await countPerAd(read(), { now: at, minutes: 1, adIds: [] })).toEqual(bruteCounts(events, at, 1));
    }
  });

  it("filters and ranks at N=1 as at longer windows", async () => {
    const adIds = ["edge-now", "edge-start-plus-1ms", "edge-start", ...Array.from({ length: 37 }, (_, i) => `ad${i}`)];
    const expected = bruteCounts(events, now, 1, adIds);
    expect(await countPerAd(read(), { now, minutes: 1, adIds })).toEqual(expected);
    const ranked = Object.entries(expected).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
    const top = await countPerAd(read(), { now, minutes: 1, adIds, limit: 4 });
    expect(top).toEqual(Object.fromEntries(ranked.slice(0, 4)));
  });

  it("answers {} for a window without events", async () => {
    expect(await countPerAd(read(), { now: now - 3 * 1440 * MINUTE_MS, minutes: 60, adIds: [] })).toEqual({});
  });

  it("filters to the given ads", async () => {
    const adIds = ["ad3", "ad7", "edge-now", "no-such-ad"];
    const counts = await countPerAd(read(), { now, minutes: 1440, adIds });
    expect(counts).toEqual(bruteCounts(events, now, 1440, adIds));
    expect(Object.keys(counts).sort()).toEqual(["ad3", "ad7", "edge-now"]);
  });

  it("keeps the top N ads by impressions, ties broken by ad id", async () => {
    const ranked = Object.entries(bruteCounts(events, now, 1440)).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
    const counts = await countPerAd(read(), { now, minutes: 1440, adIds: [], limit: 5 });
    expect(counts).toEqual(Object.fromEntries(ranked.slice(0, 5)));
  });
});

describe("timeSeries", () => {
  it("gives every minute of the window per ad, each equal to a brute-force count", async () => {
    const minutes = 60;
    const adIds = ["ad1", "ad2", "edge-now", "no-such-ad"];
    const series = await timeSeries(read(), { now, minutes, adIds });
    expect(Object.keys(series).sort()).toEqual([...adIds].sort());
    for (const adId of adIds) {
      const points = series[adId] ?? [];
      // A mid-minute window touches N + 1 minutes: a partial one at each edge.
      expect(points).toHaveLength(minutes + 1);
      for (const { minute, impressions } of points) {
        const from = Date.parse(minute);
        const expected = events.filter(
          (e) => e.adId === adId && inWindow(now, minutes)(e) && e.ts >= from && e.ts < from + MINUTE_MS,
        ).length;
        expect(impressions, `${adId} ${minute}`).toBe(expected);
      }
      const total = points.reduce((sum, p) => sum + p.impressions, 0);
      expect(total).toBe(bruteCounts(events, now, minutes)[adId] ?? 0);
    }
  });
});

describe("counting other kinds", () => {
  /** Brute-force counts of one kind: `kind` events per ad in the window. */
  function bruteKind(kind: string, at: number, minutes: number) {
    const counts: Record<string, number> = {};
    for (const e of others.filter(inWindow(at, minutes))) {
      if (e.kind === kind) counts[e.adId] = (counts[e.adId] ?? 0) + 1;
    }
    return counts;
  }

  it.each([1, 7, 60, 1440])(
    "counts each kind exactly over (now - %i min, now], impressions unchanged",
    async (minutes) => {
      for (const kind of ["viewable", "click", "start", "complete"]) {
        expect(await countPerAd(read(), { now, minutes, adIds: [], kind }), kind).toEqual(
          bruteKind(kind, now, minutes),
        );
      }
      expect(await countPerAd(read(), { now, minutes, adIds: [], kind: "impression" })).toEqual(
        bruteCounts(events, now, minutes),
      );
    },
  );

  it("gives the summary per ad: each kind and the rates between them, exactly", async () => {
    for (const minutes of [1, 60, 1440]) {
      const impressions = bruteCounts(events, now, minutes);
      const [viewable, clicks, starts, completes] = ["viewable", "click", "start", "complete"].map((kind) =>
        bruteKind(kind, now, minutes),
      ) as [Record<string, number>, Record<string, number>, Record<string, number>, Record<string, number>];
      const ads = new Set([impressions, viewable, clicks, starts, completes].flatMap((c) => Object.keys(c)));
      const expected = Object.fromEntries(
        [...ads].map((adId) => {
          const n = (counts: Record<string, number>) => counts[adId] ?? 0;
          const rate = (part: number, whole: number) => (whole === 0 ? null : part / whole);
          return [
            adId,
            {
              impressions: n(impressions),
              viewable: n(viewable),
              viewabilityRate: rate(n(viewable), n(impressions)),
              clicks: n(clicks),
              ctr: rate(n(clicks), n(impressions)),
              starts: n(starts),
              completes: n(completes),
              completionRate: rate(n(completes), n(starts)),
            },
          ];
        }),
      );
      expect(await summaryPerAd(read(), { now, minutes, adIds: [] }), `${minutes} min`).toEqual(expected);
    }
    const video = await summaryPerAd(read(), { now, minutes: 1440, adIds: ["ad5"] });
    expect(Object.keys(video)).toEqual(["ad5"]);
    expect(video.ad5?.completionRate).toBeGreaterThan(0.5);
    const top = await summaryPerAd(read(), { now, minutes: 1440, adIds: [], limit: 3 });
    const ranked = Object.entries(bruteCounts(events, now, 1440)).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
    expect(Object.keys(top).sort()).toEqual(
      ranked
        .slice(0, 3)
        .map(([adId]) => adId)
        .sort(),
    );
  });
});

describe("reachPerAd", () => {
  it("counts distinct identified users and impressions per ad exactly; frequency per identified user", async () => {
    const minutes = 1440;
    const users = new Map<string, Set<string>>();
    const identified = new Map<string, number>();
    for (const e of events.filter(inWindow(now, minutes))) {
      if (!users.has(e.adId)) users.set(e.adId, new Set());
      if (e.userId === undefined) continue;
      users.get(e.adId)?.add(e.userId);
      identified.set(e.adId, (identified.get(e.adId) ?? 0) + 1);
    }
    const counts = bruteCounts(events, now, minutes);
    const reach = await reachPerAd(read(), { now, minutes, adIds: [] });
    expect(Object.keys(reach).sort()).toEqual([...users.keys()].sort());
    for (const [adId, set] of users) {
      const impressions = counts[adId] ?? 0;
      const frequency = set.size === 0 ? null : (identified.get(adId) ?? 0) / set.size;
      expect(reach[adId]).toEqual({ impressions, reach: set.size, frequency });
    }
    // Viewers not identified are in impressions, not in reach.
    expect([...users.keys()].some((adId) => (counts[adId] ?? 0) > (identified.get(adId) ?? 0))).toBe(true);
  });

  it("keeps the top N ads by reach", async () => {
    const all = await reachPerAd(read(), { now, minutes: 1440, adIds: [] });
    const top = await reachPerAd(read(), { now, minutes: 1440, adIds: [], limit: 3 });
    const expected = Object.entries(all)
      .sort(([a, x], [b, y]) => y.reach - x.reach || (a < b ? -1 : 1))
      .slice(0, 3);
    expect(top).toEqual(Object.fromEntries(expected));
  });
});
