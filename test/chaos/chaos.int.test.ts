import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { runChaos } from "./run.ts";

describe("chaos: crashes and engine restarts neither lose nor double-count an impression", () => {
  it("20,000 events with 10% duplicates, 10 worker SIGKILLs, Kafka, ClickHouse and Valkey restarted", async () => {
    const result = await runChaos({
      events: 20_000,
      duplicateRate: 0.1,
      sendSeconds: 40,
      workers: 2,
      workerKills: 10,
      dataDir: join(repoRoot, ".data/chaos-ci"),
    });
    expect(result.workerKills).toBeGreaterThanOrEqual(10);
    expect(result.engineRestarts.sort()).toEqual(["clickhouse", "kafka", "valkey"]);
    expect({ lost: result.lost, doubleCounted: result.doubleCounted }).toEqual({ lost: 0, doubleCounted: 0 });
    expect(result.storedDistinct).toBe(result.distinctAccepted);
    expect(result.rollupTotal).toBe(result.storedRows);
  }, 300_000);
});
