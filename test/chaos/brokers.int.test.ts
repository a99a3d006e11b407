import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { runBrokerChaos } from "./broker-chaos.ts";

describe("broker chaos: a 3-broker cluster losing and restarting brokers neither loses nor double-counts", () => {
  it("20,000 events with 10% duplicates; the busiest leader SIGKILLed for 10 s, a rolling restart, 3 worker SIGKILLs", async () => {
    const result = await runBrokerChaos({
      events: 20_000,
      duplicateRate: 0.1,
      sendSeconds: 70,
      sendBatch: 50,
      workers: 2,
      workerKills: 3,
      outageSeconds: 10,
      dataDir: join(repoRoot, ".data/chaos-brokers-ci"),
    });
    expect({ replicationFactor: result.replicationFactor, minInsyncReplicas: result.minInsyncReplicas }).toEqual({
      replicationFactor: 3,
      minInsyncReplicas: 2,
    });
    const [kill, ...rolling] = result.brokerSteps;
    // The broker leading most of the 8 partitions leads at least 3, and was down 10 s while events were sent.
    expect(kill).toMatchObject({ action: "SIGKILL" });
    expect(kill?.partitionsLed).toBeGreaterThanOrEqual(3);
    expect((kill?.upAt ?? 0) - (kill?.downAt ?? 0)).toBeGreaterThanOrEqual(10);
    expect(kill?.downAt).toBeLessThan(result.sendingSeconds);
    expect(rolling.map((step) => [step.action, step.node])).toEqual([
      ["SIGTERM", 1],
      ["SIGTERM", 2],
      ["SIGTERM", 3],
    ]);
    for (const step of result.brokerSteps) expect(step.inSyncAt).toBeGreaterThanOrEqual(step.upAt);
    expect(result.workerKills).toBe(3);

    expect({ lost: result.lost, doubleCounted: result.doubleCounted }).toEqual({ lost: 0, doubleCounted: 0 });
    expect(result.storedDistinct).toBe(result.distinctAccepted);
    expect(result.distinctAccepted).toBe(18_000);
    expect(result.rollupTotal).toBe(result.storedRows);
  }, 420_000);
});
