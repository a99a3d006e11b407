import { describe, expect, it } from "vitest";
import { type AttackRow, rowFailures } from "./report.ts";
import { type LoadRecord, summarize } from "./valid-load.ts";

const stats = (okShare: number, p99Ms: number) => ({
  requests: 1000,
  ok: okShare * 1000,
  okShare,
  p50Ms: 5,
  p99Ms,
  maxMs: p99Ms,
  failures: {},
});

function row(overrides: Partial<AttackRow> = {}): AttackRow {
  return {
    attack: "slow bodies",
    summary: "",
    baseline: stats(1, 12),
    underAttack: stats(0.995, 20),
    outcomes: { cut: 40 },
    unexpected: {},
    problems: [],
    loadAverage: 1,
    ...overrides,
  };
}

describe("rowFailures: the bars of issue 19", () => {
  it("passes ≥ 99% valid 2xx, p99 within 2× the baseline, every attack request refused", () => {
    expect(rowFailures(row())).toEqual([]);
    expect(rowFailures(row({ underAttack: stats(0.99, 24) }))).toEqual([]);
  });

  it("fails under 99% 2xx, over 2× the baseline p99, an attack request let in, or a problem seen", () => {
    expect(rowFailures(row({ underAttack: stats(0.952, 1000) }))).toEqual([
      "valid 2xx 95.2% < 99.0%",
      "valid p99 1.0 s > 2 × baseline 12 ms",
    ]);
    expect(rowFailures(row({ unexpected: { "200": 17 } }))).toEqual(["attack requests not refused: 200 ×17"]);
    expect(rowFailures(row({ problems: ["ingestion not back"] }))).toEqual(["ingestion not back"]);
  });

  it("fails an attack that sent nothing, and a phase with no valid request or no latency", () => {
    expect(rowFailures(row({ outcomes: {} }))).toEqual(["the attack sent no request"]);
    const empty = { ...stats(0, Number.NaN), requests: 0, ok: 0 };
    expect(rowFailures(row({ underAttack: empty }))).toEqual([
      "no valid request was sent during the attack",
      "valid p99 – > 2 × baseline 12 ms",
    ]);
  });
});

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
