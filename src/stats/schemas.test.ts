import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MAX_RESULT_ROWS } from "./reader.ts";
import { MAX_FILTER_ADS, MAX_LIMIT, MAX_SERIES_POINTS, REACH_MAX_MINUTES, seriesPoints } from "./schemas.ts";

const dashboard = (file: string) => readFileSync(new URL(`../dashboard/${file}`, import.meta.url), "utf8");
const constant = (name: string) => Number(new RegExp(`const ${name} = (\\d+);`).exec(dashboard("dashboard.js"))?.[1]);

describe("the query routes' caps", () => {
  it("never refuse what the dashboard asks for, at its largest window", () => {
    const windows = [...dashboard("index.html").matchAll(/<option value="(\d+)"/g)].map((m) => Number(m[1]));
    const largest = Math.max(...windows);
    const [topAds, chartAds] = [constant("TOP_ADS"), constant("CHART_ADS")];
    expect([largest, topAds, chartAds]).toEqual([1440, 10, 5]);
    // /stats?limit=TOP_ADS, /stats/reach and /stats/timeseries of those ads.
    expect(topAds).toBeLessThanOrEqual(MAX_LIMIT);
    expect(topAds).toBeLessThanOrEqual(MAX_FILTER_ADS);
    expect(largest).toBeLessThanOrEqual(REACH_MAX_MINUTES);
    expect(seriesPoints(largest, chartAds)).toBeLessThanOrEqual(MAX_SERIES_POINTS);
  });

  it("let any limit and any allowed series through ClickHouse's answer-size limit", () => {
    expect(MAX_LIMIT).toBeLessThanOrEqual(MAX_RESULT_ROWS);
    expect(MAX_SERIES_POINTS).toBeLessThanOrEqual(MAX_RESULT_ROWS);
  });
});
