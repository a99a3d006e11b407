import { describe, expect, it } from "vitest";
import { disruptedBy, type LoadRecord, steady, summarize } from "./valid-load.ts";

describe("summarize", () => {
  it("counts the requests sent in the window: 2xx share, latency percentiles, the other outcomes", () => {
    const records: LoadRecord[] = [
      ...Array.from({ length: 98 }, (_, i) => ({
        at: 1000 + i,
        route: "event" as const,
        seq: i,
        outcome: "202",
        ms: 10,
      })),
      { at: 1100, route: "events", seq: 0, outcome: "503 overloaded", ms: 1000 },
      { at: 1101, route: "event", seq: 98, outcome: "cut", ms: 50 },
      { at: 5000, route: "event", seq: 99, outcome: "timeout", ms: 10_000 },
    ];
    const window = summarize(records, 1000, 2000);
    expect(window).toMatchObject({ requests: 100, ok: 98, okShare: 0.98, p50Ms: 10, p99Ms: 50, maxMs: 1000 });
    expect(window.failures).toEqual({ "503 overloaded": 1, cut: 1 });
  });
});

describe("disruptedBy", () => {
  const kill = { from: 10_000, to: 10_050, what: "SIGKILLed API process 1" };
  const record = (at: number, ms: number, outcome: string): LoadRecord => ({ at, route: "event", seq: 0, outcome, ms });

  it("is a request cut or timed out while in flight during the disruption", () => {
    expect(disruptedBy(record(9_500, 600, "cut"), kill)).toBe(true);
    expect(disruptedBy(record(10_040, 10_000, "timeout"), kill)).toBe(true);
  });

  it("is not one answered, one over before it, or one sent after it", () => {
    expect(disruptedBy(record(9_500, 600, "503 overloaded"), kill)).toBe(false);
    expect(disruptedBy(record(9_000, 500, "cut"), kill)).toBe(false);
    expect(disruptedBy(record(10_051, 5, "cut"), kill)).toBe(false);
  });
});

describe("steady", () => {
  const pulse = (sent: number, prompt: number) => ({ kind: "pulse" as const, second: 0, sent, prompt });

  it("is the last seconds all sent and all answered 2xx promptly", () => {
    expect(steady([pulse(210, 0), pulse(210, 210), pulse(211, 211), pulse(210, 210)], 3)).toBe(true);
  });

  it("is not a second with one slow or failed request, an empty second, or too few seconds yet", () => {
    expect(steady([pulse(210, 210), pulse(210, 209), pulse(210, 210)], 3)).toBe(false);
    expect(steady([pulse(210, 210), pulse(0, 0), pulse(210, 210)], 3)).toBe(false);
    expect(steady([pulse(210, 210), pulse(210, 210)], 3)).toBe(false);
  });
});
