import { describe, expect, it } from "vitest";
import type { GeneratedEvent } from "./generator.ts";
import { Histogram } from "./histogram.ts";
import { interpret, prepareRequest, retryAfterMs } from "./outcome.ts";
import { formatSummary, LoadStats, liveLine, summarize } from "./stats.ts";

const valid = (id: string): GeneratedEvent => ({ kind: "new", fields: { id, ts: 1, userId: "u", adId: "a" } });
const broken = (id: string): GeneratedEvent => ({ kind: "invalid", fields: { id, ts: 1, userId: "u" } });
const run = { url: "http://127.0.0.1:1", route: "event", batch: 1, concurrency: 2, rate: undefined };

describe("the latency histogram", () => {
  it("gives percentiles within 1% of the exact ones", () => {
    const h = new Histogram();
    for (let ms = 1; ms <= 1000; ms++) h.record(ms);
    for (const [p, exact] of [
      [50, 500],
      [90, 900],
      [99, 990],
      [100, 1000],
    ] as const) {
      expect(Math.abs(h.percentile(p) - exact) / exact).toBeLessThan(0.011);
    }
    expect(h.max).toBe(1000);
    expect(h.mean()).toBeCloseTo(500.5);
  });

  it("is 0 when empty and stays within min and max", () => {
    const h = new Histogram();
    expect(h.percentile(99)).toBe(0);
    h.record(3.3);
    expect(h.percentile(50)).toBe(3.3);
    h.reset();
    expect(h.count).toBe(0);
  });
});

describe("answers", () => {
  it("counts a /events 202 by its accepted and rejected indexes, against intent", () => {
    const events = [valid("a"), broken("b"), valid("c")];
    const body = JSON.stringify({ accepted: 2, rejected: [{ index: 1, error: "adId is required" }] });
    expect(interpret("events", events, 202, body, null)).toMatchObject({
      category: "ok",
      accepted: 2,
      rejected: 1,
      unexpected: 0,
    });
    const wrong = JSON.stringify({ accepted: 2, rejected: [{ index: 0 }] });
    expect(interpret("events", events, 202, wrong, null).unexpected).toBe(2);
  });

  it("reads 400 as rejected, 429 and 503 with their Retry-After, others as errors", () => {
    expect(interpret("event", [broken("x")], 400, "{}", null)).toMatchObject({ category: "rejected", unexpected: 0 });
    expect(interpret("event", [valid("x")], 400, "{}", null)).toMatchObject({ category: "rejected", unexpected: 1 });
    expect(interpret("pixel", [valid("x")], 429, "{}", "3")).toMatchObject({
      category: "throttled",
      retryAfterMs: 3000,
    });
    expect(interpret("event", [valid("x")], 503, "{}", null)).toMatchObject({
      category: "unavailable",
      retryAfterMs: 1000,
    });
    expect(interpret("event", [valid("x")], 401, "{}", null).category).toBe("clientError");
    expect(interpret("event", [valid("x")], 500, "{}", null).category).toBe("serverError");
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
  });

  it("sends the key as Bearer, or as ?key= on the pixel", () => {
    const e = [valid("x")];
    expect(prepareRequest("http://h", "event", e, "k").init.headers.authorization).toBe("Bearer k");
    expect(prepareRequest("http://h", "events", e, undefined).init.body).toBe(JSON.stringify([e[0]?.fields]));
    expect(prepareRequest("http://h", "pixel", e, "k").url).toBe("http://h/pixel.gif?id=x&ts=1&userId=u&adId=a&key=k");
  });
});

describe("the summary", () => {
  it("adds up, and fails past 1% of failed requests (not counting intentional 400s or 429)", () => {
    const stats = new LoadStats();
    for (let i = 0; i < 200; i++) {
      const e = i % 10 === 0 ? broken(`${i}`) : valid(`${i}`);
      stats.sending([e.kind]);
      const status = e.kind === "invalid" ? 400 : i === 1 ? 429 : 202;
      stats.record(interpret("event", [e], status, "{}", null), 1, i);
    }
    let s = summarize(stats, run, 2000, "events", 0.01);
    expect(s.events).toMatchObject({
      sent: 200,
      accepted: 179,
      rejected: 20,
      throttled: 1,
      invalid: 20,
      unexpected: 0,
    });
    expect(s.requests).toMatchObject({ sent: 200, byStatus: { 202: 179, 400: 20, 429: 1 }, failed: 0, failureRate: 0 });
    expect(s.throughput.eventsPerSecond).toBe(100);
    expect(s.latencyMs.p50).toBeGreaterThan(95);
    expect(s.latencyMs.p50).toBeLessThan(101);
    expect(s.ok).toBe(true);
    expect(formatSummary(s)).toContain("sent 200 = accepted 179 + rejected 20 + 429 1 + 503 0 + failed 0");
    expect(liveLine(stats, 2000, stats.tick())).toMatch(/^2s {2}sent 200 {2}accepted 179 {2}rejected 20 {2}429 1/);

    for (const status of [503, undefined, 503]) {
      stats.sending(["new"]);
      const outcome =
        status === undefined
          ? { ...interpret("event", [valid("n")], 202, "", null), category: "network" as const, status: undefined }
          : interpret("event", [valid("n")], status, "", null);
      stats.record(outcome, 1, 1);
      s = summarize(stats, run, 2000, "signal", 0.01);
    }
    expect(s.requests).toMatchObject({ failed: 3, unavailable: 2, networkErrors: 1, serverErrors: 2 });
    expect(s.events.sent).toBe(
      s.events.accepted + s.events.rejected + s.events.throttled + s.events.unavailable + s.events.failed,
    );
    expect(s.ok).toBe(false);
    expect(formatSummary(s)).toContain("FAILED");
  });

  it("says when --rate was not reached, why and what to change, and still ok by its requests", () => {
    const stats = new LoadStats();
    // 10 senders, 8 ms a request, 10 s: 12,600 events, about 1,260 a second against 3,000 asked.
    for (let i = 0; i < 12_600; i++) {
      stats.sending(["new"]);
      stats.record(interpret("event", [valid(`${i}`)], 202, "{}", null), 1, 8);
    }
    const s = summarize(stats, { ...run, concurrency: 10, rate: 3000 }, 10_000, "duration", 0.01);
    expect(s.ok).toBe(true);
    expect(s.rateShortfall).toMatchObject({ asked: 3000, reached: 1260 });
    const lines = formatSummary(s).split("\n");
    expect(lines.slice(-5)).toEqual([
      "rate:     1,260 events/s sent, 1,260 accepted, 1,260 requests/s",
      "          NOT the 3,000 events/s asked for (42%): 10 requests in flight × 1 event each ÷ 8.0 ms mean latency " +
        "(p50 8.0 ms) allow about 1,250 events/s",
      "          to reach it: --concurrency 24 or more (3,000 events/s × 8.0 ms ÷ 1 event a request), or --route events " +
        "--batch 100 (100 events a request); if the latency grows with them, the API is the limit: more API processes " +
        "(API_INSTANCES)",
      expect.stringMatching(/^latency: {2}p50 8\.0 ms/),
      'result:   ok, but NOT at the rate asked for (3,000 events/s): see "rate" above',
    ]);
    const reached = summarize(stats, { ...run, concurrency: 10, rate: 1300 }, 10_000, "duration", 0.01);
    expect(reached.rateShortfall).toBeNull();
    expect(formatSummary(reached).split("\n").at(-1)).toBe("result:   ok");
  });
});
