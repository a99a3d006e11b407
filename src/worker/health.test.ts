import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.ts";
import { ConsumerProgress, judgeProgress, LAG_READING_STALE_MS } from "./health.ts";

const STALL_MS = 60_000;

/** A ConsumerProgress on a clock the test moves. */
function progress() {
  let now = 1_000_000;
  const watched = new ConsumerProgress(() => now);
  const at = (ms: number) => {
    now = 1_000_000 + ms;
    return watched;
  };
  return {
    watched,
    at,
    /** The consumer's reading every 10 s, from `fromMs` up to `toMs`. */
    lag(fromMs: number, toMs: number, total: bigint) {
      for (let t = fromMs; t <= toMs; t += 10_000) at(t).measuredLag(total);
    },
    status: () => watched.health(STALL_MS).status,
    /** The status 1 ms before `ms` and at `ms`: ["ok", "stalled"] where the stall begins at `ms`. */
    statusAround(ms: number) {
      const before = at(ms - 1).health(STALL_MS).status;
      return [before, at(ms).health(STALL_MS).status];
    },
  };
}

describe("judgeProgress", () => {
  it("is ok before any lag was measured, however long after start", () => {
    const p = progress();
    p.at(10 * 60_000);
    expect(p.watched.health(STALL_MS)).toMatchObject({ status: "ok", lag: null, lastCommitSecondsAgo: null });
  });

  it("is ok when idle: no lag, the last commit long ago or never", () => {
    const p = progress();
    p.at(0).committed();
    p.lag(10_000, 3_600_000, 0n);
    expect(p.watched.health(STALL_MS)).toMatchObject({ status: "ok", reason: "no lag", lag: 0 });
    expect(p.watched.health(STALL_MS).lastCommitSecondsAgo).toBe(3600);
  });

  it("is stalled once lag stays above 0 with no commit for the stall time since the lag was first seen", () => {
    const p = progress();
    p.lag(10_000, 60_000, 500n);
    p.at(69_999);
    expect(p.status()).toBe("ok");
    p.at(70_000);
    expect(p.watched.health(STALL_MS)).toEqual({
      status: "stalled",
      reason: "lag 500 and no batch committed for 60 s (WORKER_STALL_SECONDS=60)",
      lag: 500,
      lagMeasuredSecondsAgo: 10,
      lastCommitSecondsAgo: null,
      stallSeconds: 60,
    });
  });

  it("counts from the last commit while the lag stays above 0", () => {
    const p = progress();
    p.lag(10_000, 50_000, 500n);
    p.at(50_000).committed();
    p.lag(60_000, 100_000, 300n);
    expect(p.statusAround(110_000)).toEqual(["ok", "stalled"]);
    p.at(111_000).committed();
    expect(p.status()).toBe("ok");
  });

  it("gives a worker that was idle for hours, then got partitions with lag, the full stall time", () => {
    const p = progress();
    p.at(0).committed();
    p.lag(10_000, 7_200_000, 0n);
    p.lag(7_210_000, 7_260_000, 9000n);
    expect(p.statusAround(7_270_000)).toEqual(["ok", "stalled"]);
  });

  it("starts the run over when the lag went to 0 between two readings", () => {
    const p = progress();
    p.at(10_000).measuredLag(100n);
    p.at(20_000).measuredLag(0n);
    p.lag(30_000, 80_000, 100n);
    expect(p.statusAround(90_000)).toEqual(["ok", "stalled"]);
  });

  it("is ok when the last lag reading is stale (no partition owned any more, or Kafka away)", () => {
    const p = progress();
    p.at(10_000).measuredLag(100n);
    p.at(70_000);
    expect(p.watched.health(STALL_MS)).toMatchObject({ status: "ok", lag: null });
  });

  it("starts the run over after a gap in the readings", () => {
    const p = progress();
    p.lag(10_000, 50_000, 100n);
    const back = 50_000 + LAG_READING_STALE_MS + 1;
    p.lag(back, back + STALL_MS - 10_000, 100n);
    p.at(back + STALL_MS - 1);
    expect(p.status()).toBe("ok");
    p.at(back + STALL_MS);
    expect(p.status()).toBe("stalled");
  });

  it("judges plain readings the same way", () => {
    const lag = { total: 7, measuredAt: 100_000, positiveSince: 40_000 };
    expect(judgeProgress({ lastCommitAt: undefined, lag }, 100_000, 60_000).status).toBe("stalled");
    expect(judgeProgress({ lastCommitAt: 41_000, lag }, 100_000, 60_000).status).toBe("ok");
    expect(judgeProgress({ lastCommitAt: undefined, lag }, 100_000, 61_000)).toMatchObject({
      status: "ok",
      reason: "consuming: lag 7",
    });
  });
});

describe("WORKER_STALL_SECONDS", () => {
  it("is 60 s by default, and a wrong value stops the worker naming the variable", () => {
    expect(loadConfig({}).WORKER_STALL_SECONDS).toBe(60);
    expect(loadConfig({ WORKER_STALL_SECONDS: "5" }).WORKER_STALL_SECONDS).toBe(5);
    expect(() => loadConfig({ WORKER_STALL_SECONDS: "0" })).toThrow(/WORKER_STALL_SECONDS="0"/);
    expect(() => loadConfig({ WORKER_STALL_SECONDS: "soon" })).toThrow(/WORKER_STALL_SECONDS="soon"/);
  });
});
