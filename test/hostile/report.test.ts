import { describe, expect, it } from "vitest";
import { type AttackRow, ISSUE_BARS, percent, rowFailures } from "./report.ts";

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

  it("compares a spoiled baseline's row with the clean baselines' median p99 instead", () => {
    const spoiled = row({ baseline: stats(0.9, 3000), underAttack: stats(1, 2500), referenceP99Ms: 200 });
    expect(rowFailures(spoiled)).toEqual(["valid p99 2.5 s > 2 × clean baselines' median 200 ms"]);
  });

  it("with a slack, passes a p99 over 2× the baseline but within the slack above it, and fails one past both", () => {
    const bars = { ...ISSUE_BARS, p99SlackMs: 250 };
    expect(rowFailures(row({ underAttack: stats(1, 200) }), bars)).toEqual([]);
    expect(rowFailures(row({ underAttack: stats(1, 300) }), bars)).toEqual([
      "valid p99 300 ms > 2 × baseline 12 ms and > baseline + 250 ms",
    ]);
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

describe("percent", () => {
  it("shows a share under 100% as under, however close", () => {
    expect(percent(1)).toBe("100%");
    expect(percent(0.952)).toBe("95.2%");
    expect(percent(0.9996)).toBe("99.96%");
  });
});
