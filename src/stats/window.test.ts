import { describe, expect, it } from "vitest";
import { HOUR_MS, MINUTE_MS, splitWindow } from "./window.ts";

/** Which parts of the split read an event at ts: exactly one if it is in the window, none otherwise. */
function partsOf(ts: number, w: ReturnType<typeof splitWindow>): string[] {
  const minute = Math.floor(ts / MINUTE_MS) * MINUTE_MS;
  const hour = Math.floor(ts / HOUR_MS) * HOUR_MS;
  const parts: string[] = [];
  if (ts > w.start && ts < w.fullFrom) parts.push("raw-start");
  if (minute >= w.fullFrom && minute < w.hourFrom) parts.push("minute-start");
  if (hour >= w.hourFrom && hour < w.hourTo) parts.push("hour");
  if (minute >= w.hourTo && minute < w.fullTo) parts.push("minute-end");
  if (ts >= w.fullTo && ts <= w.end) parts.push("raw-end");
  return parts;
}

describe("splitWindow", () => {
  const base = Date.UTC(2025, 0, 1, 12, 0, 0);
  const nows = [
    base,
    base - 1,
    base + 1,
    base + 30_000,
    base + 59_999,
    base + 17 * MINUTE_MS + 4_321,
    base + HOUR_MS - 1,
  ];

  it.each(nows.flatMap((now) => [1, 2, 59, 60, 61, 120, 1440].map((minutes) => [now, minutes])))(
    "reads every event in (now - N min, now] exactly once and nothing else (now=%i, N=%i)",
    (now, minutes) => {
      const w = splitWindow(now, minutes);
      const start = now - minutes * MINUTE_MS;
      const probes = [start - 1, start, start + 1, now - 1, now, now + 1];
      for (const edge of [w.fullFrom, w.fullTo, w.hourFrom, w.hourTo]) probes.push(edge - 1, edge);
      for (let ts = start - 2 * MINUTE_MS; ts <= now + 2 * MINUTE_MS; ts += 31_337) probes.push(ts);
      for (const ts of probes) {
        const expected = ts > start && ts <= now ? 1 : 0;
        expect(partsOf(ts, w), `ts=${ts}`).toHaveLength(expected);
      }
    },
  );

  it("leaves less than a minute to the raw table at each edge and less than an hour to minutes", () => {
    for (const now of nows) {
      const w = splitWindow(now, 1440);
      expect(w.fullFrom - w.start).toBeLessThanOrEqual(MINUTE_MS);
      expect(w.end - w.fullTo).toBeLessThan(MINUTE_MS);
      expect(w.hourFrom - w.fullFrom).toBeLessThan(HOUR_MS);
      expect(w.fullTo - w.hourTo).toBeLessThan(HOUR_MS);
      expect(w.hourTo - w.hourFrom).toBeGreaterThanOrEqual(22 * HOUR_MS);
    }
  });
});
