import { describe, expect, it } from "vitest";
import { type RateRun, rateShortfall } from "./shortfall.ts";

/** The run the issue reported: --rate 3000 reached 1,260 events/s with 10 senders at a p50 of 6 ms. */
const run: RateRun = {
  rate: 3000,
  eventsPerSecond: 1260,
  elapsedSeconds: 10,
  concurrency: 10,
  batch: 1,
  route: "event",
  meanLatencyMs: 7.9,
  p50LatencyMs: 6,
  throttled: 0,
  unavailable: 0,
  networkErrors: 0,
};

describe("a --rate not reached", () => {
  it("says why (concurrency × latency) and what to change (the concurrency that would, or batches)", () => {
    expect(rateShortfall(run)).toEqual({
      asked: 3000,
      reached: 1260,
      why: "10 requests in flight × 1 event each ÷ 7.9 ms mean latency (p50 6.0 ms) allow about 1,266 events/s",
      change:
        "--concurrency 24 or more (3,000 events/s × 7.9 ms ÷ 1 event a request), or --route events --batch 100 " +
        "(100 events a request); if the latency grows with them, the API is the limit: more API processes (API_INSTANCES)",
    });
    const batches = rateShortfall({ ...run, route: "events", batch: 50, rate: 200_000, meanLatencyMs: 25 });
    expect(batches?.why).toBe(
      "10 requests in flight × 50 events each ÷ 25 ms mean latency (p50 6.0 ms) allow about 20,000 events/s",
    );
    expect(batches?.change).toMatch(
      /^--concurrency 100 or more \(200,000 events\/s × 25 ms ÷ 50 events a request\), or a larger --batch;/,
    );
  });

  it("puts 429s and 503s first: each made a sender wait its Retry-After", () => {
    const limited = rateShortfall({ ...run, throttled: 120, unavailable: 3 });
    expect(limited?.why).toBe(
      "the API answered 429 120 times and 503 3 times, and each time the sender waited its Retry-After",
    );
    expect(limited?.change).toContain("INGEST_RATE_PER_IP");
    expect(limited?.change).toContain("GET /readyz");
    expect(rateShortfall({ ...run, networkErrors: 1 })?.why).toBe(
      "1 request got no answer, each followed by a pause of its sender",
    );
  });

  it("with answers fast enough for the rate, blames a slow start or this process, not the concurrency", () => {
    const slowStart = rateShortfall({ ...run, rate: 1000, eventsPerSecond: 700, meanLatencyMs: 2 });
    expect(slowStart?.why).toMatch(/allow about 5,000 events\/s, so the time went elsewhere: a slow start/);
    expect(slowStart?.change).toBe("a longer --duration, or several load generators side by side");
  });

  it("says nothing when the rate was reached (90% of it), none was asked for, or the run was under a second", () => {
    expect(rateShortfall({ ...run, eventsPerSecond: 2700 })).toBeUndefined();
    expect(rateShortfall({ ...run, rate: undefined })).toBeUndefined();
    expect(rateShortfall({ ...run, elapsedSeconds: 0.4 })).toBeUndefined();
  });
});
